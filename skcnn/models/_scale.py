"""Z-normalise each series inside the network and give its scale to the head.

Per-series z-normalisation (the UCR papers' preprocessing) lets a network
learn shapes across series whose amplitudes differ by orders of magnitude,
but it throws the amplitudes away, and on some data they carry the class:
on PLAID (electrical appliances' currents) three numbers per series, its
mean, standard deviation and largest absolute value, tell the appliances
apart almost as well as the z-normalised shapes do. :class:`KeepScale`
wraps any 1-D network: the network sees the z-normalised series, and a
small perceptron adds what the scale statistics say to its output.
"""

import torch
from torch import nn

from ._masking import check_mask, masked_moments, zero_padding

__all__ = ["KeepScale", "N_SCALE_FEATURES", "series_scale"]

# Statistics per channel: signed log of the mean, log of the standard
# deviation, log of the largest absolute value.
N_SCALE_FEATURES = 3

# Hidden units of the perceptron that reads the statistics.
SCALE_HIDDEN = 32

# Floor of the standard deviation and largest value inside the logarithms:
# a constant (zero) channel gets log(1e-12) instead of -inf.
_TINY = 1e-12


def series_scale(x, mask=None):
    """Z-normalise each series and channel and return their scale statistics.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, L)
        Series, left-aligned and zero-padded on the right.
    mask : torch.Tensor of bool, shape (n, L), default=None
        ``True`` on real time steps (see :func:`check_mask`); ``None`` when
        every step is real.

    Returns
    -------
    z : torch.Tensor of shape (n, C, L)
        ``(x - mean) / std`` over each series' and channel's real steps
        (``ddof=0``), zero on padded steps and for constant channels, as
        :func:`skcnn._sequences.normalize_series` computes it.
    stats : torch.Tensor of shape (n, 3 * C)
        Per channel ``sign(mean) * log1p(|mean|)``, ``log(std)`` and
        ``log(max |x|)`` (standard deviation and maximum floored at 1e-12),
        the channels' values one statistic after the other.
    """
    mean, std = masked_moments(x, mask)
    largest = zero_padding(x.abs(), mask).amax(dim=-1, keepdim=True)
    centred = zero_padding(x - mean, mask)
    constant = std == 0
    z = torch.where(constant, torch.zeros_like(x),
                    centred / torch.where(constant, torch.ones_like(std), std))
    stats = torch.cat([
        torch.sign(mean) * torch.log1p(mean.abs()),
        torch.log(std.clamp(min=_TINY)),
        torch.log(largest.clamp(min=_TINY)),
    ], dim=1)[..., 0]
    return z, stats


class KeepScale(nn.Module):
    """A 1-D network that z-normalises its input and reads the series' scale.

    ``forward(x, mask)`` z-normalises each series and channel over its real
    time steps (:func:`series_scale`), passes the result to ``network``
    and adds ``linear(relu(linear(batch_norm(stats))))`` to its output
    (32 hidden units), where ``stats`` are the per-channel mean, standard
    deviation and largest absolute value of the raw series, on a log
    scale. The hidden layer lets the output follow the statistics
    themselves and not only their logarithms (a target proportional to the
    amplitude); the last layer starts at zero, so training starts from the
    network alone.

    Parameters
    ----------
    network : nn.Module
        Maps ``(n, in_channels, L)`` (and ``mask``, if its forward takes
        one) to ``(n, n_outputs)``.
    in_channels : int
        Channels of the series.
    n_outputs : int
        Outputs of ``network``.
    """

    def __init__(self, network, in_channels, n_outputs):
        super().__init__()
        self.network = network
        n_stats = N_SCALE_FEATURES * in_channels
        self.scale_norm = nn.BatchNorm1d(n_stats)
        self.scale_hidden = nn.Linear(n_stats, SCALE_HIDDEN)
        self.scale_head = nn.Linear(SCALE_HIDDEN, n_outputs, bias=False)
        nn.init.zeros_(self.scale_head.weight)  # starts as the network alone

    def forward(self, x, mask=None):
        """Output of shape (n, n_outputs) for raw series ``x`` (n, C, L).

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, L)
            Raw series (not z-normalised), zero-padded on the right.
        mask : torch.Tensor of bool, shape (n, L), default=None
            ``True`` on real time steps.

        Returns
        -------
        out : torch.Tensor of shape (n, n_outputs)
        """
        mask = check_mask(x, mask)
        z, stats = series_scale(x, mask)
        out = (self.network(z) if mask is None
               else self.network(z, mask=mask))
        # (n, n_outputs), broadcast over an ensemble's stacked (k, n, ...) outputs.
        hidden = torch.relu(self.scale_hidden(self.scale_norm(stats)))
        return out + self.scale_head(hidden)
