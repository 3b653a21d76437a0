"""Sequence formats, per-series scaling and augmentation for the 1-D estimators.

:class:`_SignalMixin` overrides :meth:`BaseCNN._prepare` for
``Conv1DClassifier`` and ``Conv1DRegressor``:

- numpy ``(n, L)``/``(n, C, L)`` arrays and wide DataFrames go through
  scikit-learn's ``validate_data`` exactly as in :class:`BaseCNN`
  (``n_features_in_``, ``feature_names_in_``, the standard messages);
- sktime/aeon nested DataFrames, lists of 1-D or ``(C, L_i)`` arrays and
  object arrays of series go through :func:`skcnn._sequences.to_padded`:
  unequal lengths are zero-padded on the right and their lengths kept, so
  that every batch carries a mask;
- at predict time the channels must match ``fit``; the length may differ
  from ``fit`` (and vary within ``X``) when the network's ``forward`` takes
  a ``mask`` (``'fcn'``, ``'resnet'``, ``'inceptiontime'``). Other networks
  (``'convnet'``, whose dense head has a fixed size) get a ``ValueError``
  that says which architectures to use instead;
- ``normalize`` scales every series and channel over its real length, at
  fit and predict time alike (no statistics are learned).

``augment`` builds an :class:`Augmentation`, the ``batch_transform`` of the
skorch net: it changes the inputs of each training batch on the device and
never touches validation or prediction batches.
"""

import inspect
import math
import numbers
import re

import numpy as np
import pandas as pd
import torch
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_array, validate_data

from ._sequences import _is_nested, normalize_series, to_padded

__all__ = ["AUGMENTATIONS", "Augmentation", "SIGNAL_CONSTRAINTS", "signal_doc"]

# name -> (default strength, what the strength is, its valid range as text).
AUGMENTATIONS = {
    "window_slice": (0.9, "share of the series kept", "(0, 1]"),
    "scaling": (0.1, "standard deviation of the factor", "(0, inf)"),
    "jitter": (0.03, "noise standard deviation, relative to the series'",
               "(0, inf)"),
}

SIGNAL_CONSTRAINTS = {
    "normalize": [None, StrOptions({"zscore", "minmax"})],
    "augment": [None, str, list, tuple, dict],
}

_FLEXIBLE = "'fcn', 'resnet' or 'inceptiontime'"


class _SignalMixin:
    """Sequence formats, unequal lengths, ``normalize`` and ``augment``.

    Put it before the task base class: ``class Conv1DClassifier(_SignalMixin,
    _CNNClassifierBase)``. The estimator must have the parameters
    ``normalize`` and ``augment``.
    """

    def _prepare(self, X, y=None, *, reset):
        if _is_series_container(X):
            X3, lengths = to_padded(X)  # a new float32 array
            if reset:
                X3, y = validate_data(self, X3, y, allow_nd=True, dtype=np.float32,
                                      **self._y_validation_kwargs())
                self.input_shape_ = tuple(X3.shape[1:])
                self.n_features_in_ = int(np.prod(self.input_shape_))
        elif reset:
            X3, y = self._validate_X(X, y, reset=True)
            lengths = None
        else:
            X3, lengths = self._validate_array(X), None
        if not reset:
            self._check_series(X3, lengths)
        if self.normalize is not None:
            X3 = normalize_series(X3, lengths, self.normalize)
        return X3, lengths, y

    def _validate_array(self, X):
        """Validate an array or wide DataFrame at predict time.

        Data of the fitted shape go through :meth:`BaseCNN._validate_X`
        (scikit-learn's checks of ``n_features_in_`` and feature names).
        Series of another length are read with ``check_array`` when the
        network takes any length, and refused otherwise.
        """
        shape = _shape(X)
        channels, length = self.input_shape_
        if shape is None or len(shape) not in (2, 3) or shape[1:] in (
                (self.n_features_in_,), self.input_shape_):
            return self._validate_X(X, reset=False)
        name = type(self).__name__
        if len(shape) == 3 and shape[1] != channels:
            raise ValueError(self._channel_message(shape[1]))
        if len(shape) == 2 and shape[1] % channels:
            raise ValueError(
                f"X has {shape[1]} features, but {name} was fitted on "
                f"{channels}-channel series: a flat row must hold a whole "
                f"number of time steps of {channels} values."
            )
        if not self._takes_mask():
            got = (f"X has {shape[1]} features, but {name} is expecting "
                   f"{self.n_features_in_} features as input." if len(shape) == 2
                   else f"X holds series of length {shape[2]}, but {name} was "
                   f"fitted on series of length {length}.")
            raise ValueError(f"{got} {self._length_hint()}")
        uint8 = getattr(X, "dtype", None) == np.uint8
        X = check_array(X, allow_nd=True, dtype=np.float32, order="C")
        if uint8:  # as BaseCNN._validate_X reads uint8
            X = X * np.float32(1 / 255)
        return X.reshape(len(X), channels, -1)

    def _check_series(self, X3, lengths):
        """Channels as in ``fit``; another length only for a masking network."""
        channels, length = self.input_shape_
        if X3.shape[1] != channels:
            raise ValueError(self._channel_message(X3.shape[1]))
        if (lengths is None and X3.shape[-1] == length) or self._takes_mask():
            return
        name = type(self).__name__
        got = (f"X holds series of unequal lengths ({lengths.min()} to "
               f"{lengths.max()})" if lengths is not None
               else f"X holds series of length {X3.shape[-1]}")
        raise ValueError(f"{got}, but {name} was fitted on series of length "
                         f"{length}. {self._length_hint()}")

    def _channel_message(self, got):
        channels = self.input_shape_[0]
        return (f"X has series of {got} channel(s), but {type(self).__name__} "
                f"was fitted on series of {channels} channel(s).")

    def _length_hint(self):
        arch = self.architecture
        shown = repr(arch) if isinstance(arch, str) else getattr(arch, "__name__", arch)
        return (f"architecture={shown} needs every series to have the length "
                f"seen in fit, since its forward takes no mask; use "
                f"architecture={_FLEXIBLE}, which take series of any length, "
                f"unequal lengths included.")

    def _takes_mask(self):
        """Whether the fitted network's ``forward`` accepts a ``mask``."""
        return _forward_takes_mask(self.net_.module_)

    def _fit(self, X, y_tensor, n_outputs, criterion, criterion_kwargs=None,
             lengths=None):
        transform = Augmentation.from_param(self.augment)
        old = getattr(self, "net_", None)
        if old is not None:  # used again when warm-starting
            reused = (self.warm_start and old.sample_shape == self.input_shape_
                      and getattr(self, "_n_outputs", None) == n_outputs)
            if reused and lengths is not None:
                self._check_takes_mask(old.module_, lengths)
            old.batch_transform = transform
        self._fit_signal = (transform, lengths)
        try:
            return super()._fit(X, y_tensor, n_outputs, criterion,
                                criterion_kwargs, lengths=lengths)
        finally:
            del self._fit_signal

    def _build_net(self, *args, **kwargs):
        net = super()._build_net(*args, **kwargs)
        transform, lengths = self._fit_signal
        if lengths is not None:
            self._check_takes_mask(net.module, lengths)
        net.batch_transform = transform
        return net

    def _check_takes_mask(self, module, lengths):
        if not _forward_takes_mask(module):
            raise ValueError(
                f"X holds series of unequal lengths ({lengths.min()} to "
                f"{lengths.max()}), but the network's forward takes no mask. "
                f"{self._length_hint()}"
            )


def _forward_takes_mask(module):
    return "mask" in inspect.signature(module.forward).parameters


def _shape(X):
    """Shape of an array-like without converting it, or None if unknown."""
    shape = getattr(X, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        return None


def _is_series_container(X):
    """Whether X is a collection of series rather than an array of values.

    Nested DataFrames, pandas Series of series, lists and tuples, and 1-D
    object arrays go to :func:`to_padded`; numeric arrays, wide DataFrames,
    sparse matrices and other array-likes to scikit-learn's validation.
    """
    if isinstance(X, (list, tuple)):
        return True
    if isinstance(X, pd.DataFrame):
        return _is_nested(X)
    if isinstance(X, pd.Series):
        return X.dtype == object
    return isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1


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
        gather = (lambda idx: x.gather(2, idx[:, None, :].expand_as(x)))
        return gather(left) * (1 - frac) + gather(right) * frac

    @staticmethod
    def _scaling(x, mask, sigma):
        factor = 1 + sigma * torch.randn(x.shape[:2] + (1,), device=x.device)
        return x * factor

    @staticmethod
    def _jitter(x, mask, sigma):
        if mask is None:
            std = x.std(dim=-1, keepdim=True, unbiased=False)
        else:
            m = mask[:, None, :].to(x.dtype)
            count = m.sum(dim=-1, keepdim=True).clamp(min=1)
            mean = (x * m).sum(dim=-1, keepdim=True) / count
            std = (((x - mean) * m) ** 2).sum(dim=-1, keepdim=True).div(count).sqrt()
        return x + sigma * std * torch.randn_like(x)


# -- documentation ------------------------------------------------------------
_SIGNAL_PARAMS = """\
normalize : {'zscore', 'minmax'} or None, default=None
        Scale every series and channel over its own real length, in ``fit``
        and ``predict`` alike (nothing is learned from the training set):
        ``'zscore'`` subtracts its mean and divides by its standard
        deviation, as the deep-learning papers on the UCR archive do;
        ``'minmax'`` maps it to [0, 1]; ``None`` leaves the values as they
        are (the UCR data are already z-normalised). A constant series
        becomes zeros.
    augment : str, list of str, dict or None, default=None
        Augment every training batch (never validation or prediction
        batches), drawn anew each epoch and reproducible with
        ``random_state``. Names: ``'window_slice'`` (crop a random window
        of 90% of the series and stretch it back), ``'scaling'`` (multiply
        each series and channel by a factor ~ N(1, 0.1^2)) and ``'jitter'``
        (add Gaussian noise of 0.03 times the series' standard deviation).
        A dict ``{'window_slice': 0.8, 'jitter': 0.05}`` sets the
        strengths (the share kept, the standard deviations); a list uses
        the defaults. Applied in the order window_slice, scaling, jitter,
        to the real time steps only.
    """

_SIGNAL_NOTES = """\
    Series formats: numpy ``(n, L)`` and ``(n, C, L)`` arrays (sktime's and
    aeon's ``numpy3D``), wide DataFrames (one row a series; column names
    are kept in ``feature_names_in_``), nested DataFrames (sktime's
    ``nested_univ``: a cell a ``pd.Series``, a column a channel), and lists
    of 1-D ``(L_i,)`` or 2-D ``(C, L_i)`` arrays (aeon's ``np-list``).
    Series of unequal length are zero-padded on the right and masked:
    ``'fcn'``, ``'resnet'`` and ``'inceptiontime'`` give a series the same
    output however long the series it is batched with, and take series of
    any length at predict time. ``'convnet'`` (a dense head of fixed size)
    needs every series to have the length seen in ``fit``. The channels
    must always match ``fit``.

    Training recipe: the papers train FCN and ResNet for 1500-2000 epochs
    of Adam at a constant 1e-3 (halved on plateaus). The 1-D defaults
    instead {recipe}
"""


def signal_doc(doc, defaults, recipe):
    """A 1-D estimator's docstring: the 1-D defaults, parameters and notes.

    Parameters
    ----------
    doc : str
        The docstring filled by :func:`skcnn._docs.fill`.
    defaults : dict
        ``{name: text}`` of the defaults that differ from the shared text,
        e.g. ``{'batch_size': '16'}``.
    recipe : str
        End of the sentence on the training recipe, in the Notes.

    Returns
    -------
    doc : str
    """
    for name, text in defaults.items():
        doc, count = re.subn(rf"(\n    {name} : [^\n]*default=)[^\n]*",
                             lambda m: m.group(1) + text, doc)
        if count != 1:
            raise RuntimeError(f"No documented default of {name!r} to replace.")
    doc = doc.replace("\n    optimizer : ", "\n    " + _SIGNAL_PARAMS + "optimizer : ",
                      1)
    notes = _SIGNAL_NOTES.format(recipe=recipe)
    return doc.replace("\n    Examples\n", "\n" + notes + "\n    Examples\n", 1)



# The 1-D estimators' own training defaults, as their docstrings show them
# (only those that differ from the image estimators' shared text).
CLASSIFIER_DEFAULTS_DOC = {"batch_size": "8", "max_epochs": "300"}
REGRESSOR_DEFAULTS_DOC = {"lr": "3e-3", "batch_size": "16", "max_epochs": "300"}
CLASSIFIER_RECIPE = """\
use batches of 8 (the papers use at most 16, and ``n / 10`` for
    small sets: UCR training sets hold from 16 to a few thousand series)
    and a one-cycle schedule peaking at 1e-3 over 300 epochs, 5-7x fewer,
    on batches of nearly equal size. FCN and ResNet then come within 1
    point of their published accuracy on GunPoint, ItalyPowerDemand and
    ArrowHead (means of 10 seeds), in 14-50 s per FCN or ResNet fit
    (InceptionTime: up to 2 minutes) on 2 CPU cores (``benchmarks/ucr.py``;
    results in ``benchmarks/RESULTS.md``). A peak of 3e-3 cost GunPoint's
    FCN 1.1 points, batches of 16 ArrowHead's FCN 0.8. Augmentation is off
    by default: window slicing lowered ArrowHead's accuracy. The image
    estimators' defaults (batches of 64, 30 epochs) suit data sets of
    thousands of images instead. With many thousands of series, fewer
    epochs suffice: lower ``max_epochs`` or set ``early_stopping=True``."""
REGRESSOR_RECIPE = """\
use batches of 16 and a one-cycle schedule peaking at 3e-3 over 300
    epochs, on batches of nearly equal size (``benchmarks/ucr.py``; results
    on Covid3Month in ``benchmarks/RESULTS.md``). The classifier's peak of
    1e-3 left FCN far from fitting Covid3Month's 140 training series in 300
    epochs. On small regression sets compare with predicting the mean:
    FCN and ResNet ended above it on Covid3Month, and
    ``early_stopping=True, patience=20`` brought FCN to its level. The image
    estimators' defaults (batches of 64, 1e-3, 30 epochs) suit data sets of
    thousands of images instead."""
