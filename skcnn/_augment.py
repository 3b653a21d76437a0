"""1-D augmentation of training batches: the ``augment`` parameter of the 1-D estimators.

:class:`Augmentation` is the ``batch_transform`` of the skorch net: it
changes the inputs of each training batch on their device and never touches
validation or prediction batches.
"""

import math
import numbers

import torch

from ._utils import did_you_mean
from .models._masking import masked_moments

__all__ = ["AUGMENTATIONS", "Augmentation"]

# name -> (default strength, what the strength is, its valid range as text).
AUGMENTATIONS = {
    "window_slice": (0.9, "share of the series kept", "(0, 1]"),
    "scaling": (0.1, "standard deviation of the factor", "(0, inf)"),
    "jitter": (0.03, "noise standard deviation, relative to the series'",
               "(0, inf)"),
}


class Augmentation:
    """Random 1-D augmentations of a training batch, applied on its device.

    Each augmentation is drawn independently for every series (and channel)
    of every batch, from torch's random generator. The estimators train
    inside a seeded generator when ``random_state`` is set, so the same
    ``random_state`` gives the same augmented batches and the same model.
    Applied in this order, to the real time steps only (padding stays zero):

    ``'window_slice'`` (Le Guennec et al. 2016)
        Crop a random window of ``ratio`` times the series' length and
        stretch it back to that length by linear interpolation.
    ``'scaling'`` (Um et al. 2017)
        Multiply each series and channel by a factor drawn from
        ``N(1, sigma^2)``.
    ``'jitter'`` (Um et al. 2017)
        Add Gaussian noise of standard deviation ``sigma`` times the
        standard deviation of each series and channel (``sigma`` is the
        absolute noise level on z-normalised series).

    Parameters
    ----------
    steps : sequence of (str, float)
        Augmentation names and strengths, see :data:`AUGMENTATIONS`.
    """

    def __init__(self, steps):
        self.steps = tuple(steps)

    @classmethod
    def from_param(cls, augment):
        """Build from the estimators' ``augment`` parameter (None: no-op).

        Parameters
        ----------
        augment : None, str, sequence of str or dict
            ``None``; a name; several names; or ``{name: strength}``, a
            strength ``None`` meaning its default.

        Returns
        -------
        augmentation : Augmentation or None
        """
        if augment is None:
            return None
        if isinstance(augment, str):
            augment = {augment: None}
        elif isinstance(augment, (list, tuple)):
            bad = [a for a in augment if not isinstance(a, str)]
            if bad:
                raise TypeError(
                    f"augment as a list must hold augmentation names "
                    f"{list(AUGMENTATIONS)}; got {bad[0]!r}."
                )
            augment = dict.fromkeys(augment)
        elif not isinstance(augment, dict):
            raise TypeError(
                f"augment must be None, a name, a list of names or a dict "
                f"{{name: strength}} with names in {list(AUGMENTATIONS)}; got "
                f"{type(augment).__name__} {augment!r}."
            )
        unknown = [k for k in augment if k not in AUGMENTATIONS]
        if unknown:
            raise ValueError(
                f"Unknown augmentation {unknown[0]!r}; augment takes "
                f"{list(AUGMENTATIONS)}."
                f"{did_you_mean(str(unknown[0]), AUGMENTATIONS)}"
            )
        steps = []
        for name, (default, meaning, bounds) in AUGMENTATIONS.items():
            if name not in augment:
                continue
            value = default if augment[name] is None else augment[name]
            low_ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            ok = low_ok and 0 < value and (value <= 1 if name == "window_slice"
                                           else math.isfinite(value))
            if not ok:
                raise ValueError(
                    f"augment[{name!r}] ({meaning}) must be a float in "
                    f"{bounds}; got {value!r}."
                )
            steps.append((name, float(value)))
        return cls(steps) if steps else None

    def __repr__(self):
        return f"Augmentation({dict(self.steps)!r})"

    @torch.no_grad()
    def __call__(self, Xb):
        """Augmented copy of a batch: a tensor ``(n, C, L)`` or ``{'x', 'mask'}``."""
        if isinstance(Xb, dict):
            x, mask = Xb["x"], Xb["mask"]
        else:
            x, mask = Xb, None
        x = x.float()
        for name, strength in self.steps:
            x = getattr(self, "_" + name)(x, mask, strength)
        if mask is not None:
            x = x.masked_fill(~mask[:, None, :], 0.0)
            return {**Xb, "x": x}
        return x

    @staticmethod
    def _window_slice(x, mask, ratio):
        n, _, L = x.shape
        lengths = (torch.full((n,), L, device=x.device) if mask is None
                   else mask.sum(dim=1)).float()
        width = torch.clamp(torch.ceil(ratio * lengths), min=1.0)
        start = torch.floor(torch.rand(n, device=x.device) * (lengths - width + 1))
        steps = torch.arange(L, device=x.device, dtype=torch.float32)[None, :]
        # Output step t of a series of length m reads position
        # start + t * (width - 1) / (m - 1) of the input.
        slope = (width - 1) / torch.clamp(lengths - 1, min=1.0)
        pos = start[:, None] + steps * slope[:, None]
        pos = torch.minimum(pos, (lengths - 1)[:, None])
        left = pos.floor().long()
        right = torch.clamp(left + 1, max=L - 1)
        frac = (pos - left)[:, None, :]
        def gather(idx):
            return x.gather(2, idx[:, None, :].expand_as(x))

        return gather(left) * (1 - frac) + gather(right) * frac

    @staticmethod
    def _scaling(x, mask, sigma):
        factor = 1 + sigma * torch.randn(x.shape[:2] + (1,), device=x.device)
        return x * factor

    @staticmethod
    def _jitter(x, mask, sigma):
        _, std = masked_moments(x, mask)
        return x + sigma * std * torch.randn_like(x)
