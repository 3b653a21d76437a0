"""Layers for 1-D networks that take series of unequal length, exactly.

A batch of unequal-length series is stored left-aligned and zero-padded on
the right, with a boolean ``mask`` of shape ``(n, L)`` that is ``True`` on
real time steps. The layers here keep every padded position at zero after
each operation that could leak into it (convolution bias, batch-norm shift,
activations), so that a following 'same' convolution sees exactly the zeros
it would see at the end of the series alone. Max-pooling treats padded
positions as ``-inf`` and global average pooling divides by the real length.
With these rules a series' output does not depend on the length it was
padded to (up to float rounding). In training mode, batch norm computes its
statistics over the real time steps only.

Every layer also accepts ``mask=None`` and then behaves as a plain layer.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc
from ._layers import as_tuple, make_activation

__all__ = ["ConvNormAct", "MaskedBatchNorm1d", "MaskedGAPNet", "NormAct",
           "SameConv1d", "check_mask", "fill_1d_doc", "masked_global_avg_pool",
           "masked_max_pool_same", "masked_moments", "per_layer", "zero_padding"]


_DOCS = {
    "data_params": """in_channels : int
        Channels (variables) of the series.
    n_outputs : int
        Number of logits or regression outputs.""",
    "head_params": """dropout : float, default=0.0
        Dropout before the linear layer (none in the paper).
    activation : str, default='relu'
        Activation function (see ``skcnn.models.ACTIVATIONS``).""",
    "forward_note": """Notes
    -----
    ``forward(x, mask=None)`` maps ``(n, in_channels, L)`` to logits
    ``(n, n_outputs)``; ``mask`` (bool, ``(n, L)``) marks the real time steps
    of right-padded series (see :meth:`MaskedGAPNet.forward`).""",
}


# Decorator: substitutes ``{data_params}``, ``{head_params}`` and
# ``{forward_note}``, the text shared by the 1-D families.
fill_1d_doc = fill_doc(**_DOCS)


def check_mask(x, mask):
    """Validate ``mask`` against a batch ``x`` of shape ``(n, C, L)``.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, L)
        The batch.
    mask : torch.Tensor of shape (n, L) or None
        ``True`` (or non-zero) on real time steps.

    Returns
    -------
    mask : torch.Tensor of bool, shape (n, L), on ``x.device``, or None
    """
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    expected = (x.shape[0], x.shape[-1])
    if tuple(mask.shape) != expected:
        raise ValueError(
            f"mask must have shape (n, L) = {expected} to match the input of "
            f"shape {tuple(x.shape)}; got {tuple(mask.shape)}."
        )
    if mask.dtype != torch.bool:
        mask = mask != 0
    return mask.to(x.device)


def zero_padding(x, mask):
    """Set the padded time steps of ``x`` (n, C, L) to zero; no-op without a mask."""
    if mask is None:
        return x
    return x.masked_fill(~mask[:, None, :], 0.0)


def masked_global_avg_pool(x, mask):
    """Mean over the real time steps of each series: (n, C, L) -> (n, C).

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, L)
        Feature maps, zero on padded positions.
    mask : torch.Tensor of bool, shape (n, L), or None
        Real time steps; ``None`` averages over all ``L`` steps.

    Returns
    -------
    pooled : torch.Tensor of shape (n, C)
    """
    if mask is None:
        return x.mean(dim=-1)
    lengths = mask.sum(dim=-1, keepdim=True).clamp(min=1).to(x.dtype)
    return zero_padding(x, mask).sum(dim=-1) / lengths


def masked_moments(x, mask):
    """Mean and standard deviation (``ddof=0``) over each series' real steps.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, L)
        Series, left-aligned and zero-padded on the right.
    mask : torch.Tensor of bool, shape (n, L), or None
        Real time steps; ``None`` takes all ``L`` steps.

    Returns
    -------
    mean, std : torch.Tensor of shape (n, C, 1)
    """
    if mask is None:
        return x.mean(dim=-1, keepdim=True), x.std(dim=-1, keepdim=True, unbiased=False)
    m = mask[:, None, :].to(x.dtype)
    count = m.sum(dim=-1, keepdim=True).clamp(min=1)
    mean = (x * m).sum(dim=-1, keepdim=True) / count
    std = (((x - mean) * m) ** 2).sum(dim=-1, keepdim=True).div(count).sqrt()
    return mean, std


def masked_max_pool_same(x, mask, kernel_size=3):
    """Max-pooling with stride 1 and 'same' size that ignores padded steps.

    Padded positions count as ``-inf``, like the implicit border padding of
    the pooling itself, then are reset to zero in the output.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, L)
        Input.
    mask : torch.Tensor of bool, shape (n, L), or None
        Real time steps.
    kernel_size : int, default=3
        Odd pooling window.

    Returns
    -------
    pooled : torch.Tensor of shape (n, C, L)
    """
    if mask is not None:
        x = x.masked_fill(~mask[:, None, :], float("-inf"))
    out = F.max_pool1d(x, kernel_size, stride=1, padding=kernel_size // 2)
    return zero_padding(out, mask)


def per_layer(value, n_layers, name):
    """One positive int per layer from an int or a sequence of ``n_layers`` ints.

    Parameters
    ----------
    value : int or sequence of int
        A value for every layer, or one for each.
    n_layers : int
        Number of layers.
    name : str
        Parameter name, for the error message.

    Returns
    -------
    values : tuple of int of length ``n_layers``
    """
    values = as_tuple(value, name)
    if len(values) == 1:
        return values * n_layers
    if len(values) != n_layers:
        raise ValueError(
            f"{name} must be an int or a sequence of {n_layers} ints (one per "
            f"layer); got {value!r} ({len(values)} values)."
        )
    return values


class SameConv1d(nn.Conv1d):
    """Stride-1 ``nn.Conv1d`` whose output keeps the input length.

    An odd kernel is padded symmetrically; an even one gets its extra zero on
    the right, as torch's ``padding='same'`` does, but without the warning
    and the internal copy that torch makes for it.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel_size : int
        Kernel size.
    bias : bool, default=True
        Whether the convolution has a bias.
    dilation : int, default=1
        Spacing of the kernel's taps: it spans ``dilation * (kernel_size -
        1) + 1`` steps, padded as a kernel of that size.
    """

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, dilation=1):
        span = dilation * (kernel_size - 1) + 1
        even = span % 2 == 0
        super().__init__(in_channels, out_channels, kernel_size,
                         padding=0 if even else span // 2, bias=bias,
                         dilation=dilation)
        self.extra_padding = (span // 2 - 1, span // 2) if even else None

    def forward(self, x):
        """Convolve ``x`` of shape (n, C, L) to (n, out_channels, L)."""
        if self.extra_padding is not None:
            x = F.pad(x, self.extra_padding)
        return super().forward(x)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` whose training statistics skip padded time steps.

    In training mode with a mask, the batch mean and variance (and the running
    estimates) are computed over the real time steps only; in eval mode the
    normalisation is per element and needs no mask. The output is zero on
    the padded steps in training with a mask, and not re-zeroed otherwise:
    see :class:`NormAct`.

    With ``sync = True`` (set by a data-parallel fit with
    ``sync_batch_norm=True``) and a process group of several ranks, the
    training statistics are those of the real time steps of every rank's
    batch: the per-channel counts, sums and sums of squares are summed over
    the ranks (see :func:`skcnn._distributed.global_batch_norm`), with the
    gradients carried back to every rank.
    """

    sync = False  # class default: a network pickled before it existed loads

    def forward(self, x, mask=None):
        """Normalise ``x`` of shape (n, C, L); ``mask`` (n, L) marks real steps."""
        if self.sync:
            from .._distributed import global_batch_norm, syncing

            # Every rank takes this path whatever its mask: the all-reduce
            # is a collective that each rank must join.
            if syncing(self):
                if mask is None:
                    return global_batch_norm(self, x)
                steps = x.transpose(1, 2)  # (n, L, C)
                out = steps.new_zeros(steps.shape)
                out[mask] = global_batch_norm(self, steps[mask])  # (n_real, C)
                return out.transpose(1, 2)
        if mask is None or not self.training or bool(mask.all()):
            return super().forward(x)
        steps = x.transpose(1, 2)  # (n, L, C)
        out = steps.new_zeros(steps.shape)
        out[mask] = super().forward(steps[mask])  # (n_real, C)
        return out.transpose(1, 2)


class NormAct(nn.Module):
    """Optional batch norm, optional activation, then zero the padded steps.

    Parameters
    ----------
    channels : int
        Number of channels.
    batch_norm : bool
        Whether to apply :class:`MaskedBatchNorm1d`.
    activation : str or None
        Activation name (see ``skcnn.models.ACTIVATIONS``), or None.
    """

    def __init__(self, channels, batch_norm, activation):
        super().__init__()
        self.norm = MaskedBatchNorm1d(channels) if batch_norm else None
        self.act = None if activation is None else make_activation(activation)

    def forward(self, x, mask=None):
        """Apply the layers to ``x`` (n, C, L) with real steps ``mask`` (n, L)."""
        if self.norm is not None:
            x = self.norm(x, mask)
        if self.act is not None:
            x = self.act(x)
        return zero_padding(x, mask)


class ConvNormAct(nn.Module):
    """'same' 1-D convolution, then :class:`NormAct`.

    The convolution has a bias only without batch norm (which has a shift).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel_size : int
        Kernel size; an even size is padded one more step on the right.
    batch_norm : bool
        Batch normalisation after the convolution.
    activation : str or None
        Activation after the normalisation, or None.
    dilation : int, default=1
        Dilation of the convolution (see :class:`SameConv1d`).
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, batch_norm,
                 activation, dilation=1):
        super().__init__()
        self.conv = SameConv1d(in_channels, out_channels, kernel_size,
                               bias=not batch_norm, dilation=dilation)
        self.post = NormAct(out_channels, batch_norm, activation)

    def forward(self, x, mask=None):
        """Apply the block to ``x`` (n, C, L), zero on its padded steps."""
        return self.post(self.conv(x), mask)


class MaskedGAPNet(nn.Module):
    """Blocks, masked global average pooling, dropout and a linear layer.

    The shared skeleton of FCN, ResNet and InceptionTime: every block is a
    module called as ``block(x, mask)`` that keeps the length of ``x``.

    Parameters
    ----------
    blocks : sequence of nn.Module
        Feature blocks, applied in order.
    n_features : int
        Channels out of the last block.
    n_outputs : int
        Number of logits or regression outputs.
    dropout : float
        Dropout probability before the linear layer.
    """

    def __init__(self, blocks, n_features, n_outputs, dropout):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.fc = nn.Linear(n_features, n_outputs)

    def forward(self, x, mask=None):
        """Logits of shape (n, n_outputs) for ``x`` of shape (n, C, L).

        Parameters
        ----------
        x : torch.Tensor of shape (n, C, L)
            Series, left-aligned and zero-padded on the right.
        mask : torch.Tensor of bool, shape (n, L), default=None
            ``True`` on real time steps. Without it every step is real.

        Returns
        -------
        logits : torch.Tensor of shape (n, n_outputs)
        """
        mask = check_mask(x, mask)
        x = zero_padding(x, mask)
        for block in self.blocks:
            x = block(x, mask)
        return self.fc(self.dropout(masked_global_avg_pool(x, mask)))
