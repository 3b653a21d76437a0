"""Sequence formats, unequal lengths and per-series scaling for the 1-D estimators.

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
  fit and predict time alike (no statistics are learned); with
  ``'zscore+scale'`` the network does it (:class:`skcnn.models._scale.KeepScale`)
  and also reads each series' scale.

``augment`` builds an :class:`skcnn._augment.Augmentation`, the
``batch_transform`` of the skorch net.
"""

import math
import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_array, validate_data

from ._augment import Augmentation
from ._backbones import is_weights_file, read_state_dict
from ._compat import Interval, StrOptions
from ._data import batch_sizes, group_by_length
from ._finetune import load_weights
from ._images import to_unit_range
from ._sequences import _is_nested, normalize_series, scale_spread, to_padded
from .models._ensemble import Ensemble, takes_mask
from .models._scale import KeepScale

__all__ = ["AUTO_EPOCHS", "AUTO_NORMALIZE_SPREAD", "SIGNAL_CONSTRAINTS", "auto_max_epochs"]

SIGNAL_CONSTRAINTS = {
    "normalize": [None, StrOptions({"zscore", "minmax", "zscore+scale", "auto"})],
    "augment": [None, str, list, tuple, dict],
    "n_ensemble": [Interval(numbers.Integral, 1, None, closed="left")],
    "group_by_length": ["boolean"],
}

# normalize='auto' of a classifier: 'zscore+scale' (z-normalise each series,
# give the network its scale) when, in some channel, the series' standard deviations
# spread over more than this factor (90th / 10th percentile): three orders
# of magnitude that a network cannot learn across.
AUTO_NORMALIZE_SPREAD = 1000.0

# max_epochs='auto': the rule's constants (documented in the estimators'
# Notes and the user guide's "Training length" section).
AUTO_EPOCHS = {
    "steps": 4000,  # optimizer steps aimed at (Conv1DClassifier)
    "regressor_steps": 2000,  # the same for Conv1DRegressor
    "min_epochs": 20,  # at least this many passes, however large the set
    "budget": 25_000_000,  # time steps (series x length) processed at most
}


def auto_max_epochs(n_train, batch_size, length, *, steps=None, min_epochs=None,
                    budget=None):
    """Epochs of ``max_epochs='auto'`` for ``n_train`` series of ``length``.

    Enough epochs for about ``steps`` optimizer steps, but no more than the
    epochs that process ``budget`` time steps (``n_train * length`` per
    epoch), and never fewer than ``min_epochs``.

    Parameters
    ----------
    n_train : int
        Series trained on (without a validation split).
    batch_size : int
        The estimator's ``batch_size``.
    length : float
        Time steps per series as the network sees them (for unequal
        lengths: the mean padded length of a batch).
    steps, min_epochs, budget : int, default=None
        The rule's constants; ``None`` takes ``AUTO_EPOCHS``'s (the
        classifier's ``steps``).

    Returns
    -------
    epochs : int
    """
    steps = AUTO_EPOCHS["steps"] if steps is None else steps
    min_epochs = AUTO_EPOCHS["min_epochs"] if min_epochs is None else min_epochs
    budget = AUTO_EPOCHS["budget"] if budget is None else budget
    per_epoch = math.ceil(n_train / batch_size)
    by_steps = math.ceil(steps / per_epoch)
    by_budget = int(budget // max(1.0, n_train * float(length)))
    return max(min_epochs, min(by_steps, by_budget))

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
        else:
            self.normalize_ = self._resolve_normalize(X3, lengths)
        # Estimators fitted before normalize_ existed scale as their parameter says.
        method = getattr(self, "normalize_", self.normalize)
        # 'zscore+scale': the network (KeepScale) scales the raw series itself.
        if method is not None and method != "zscore+scale":
            X3 = normalize_series(X3, lengths, method)
        return X3, lengths, y

    def _resolve_normalize(self, X3, lengths):
        """``normalize``, or what ``normalize='auto'`` picks for the training data.

        A regressor always keeps the scale ('zscore+scale'): a target
        often follows a series' level or amplitude as much as its shape.
        A classifier z-normalises only series whose scales spread over
        ``AUTO_NORMALIZE_SPREAD``: on the others, z-normalising cost
        classes that live in the channels' levels (JapaneseVowels).
        """
        if self.normalize != "auto":
            return self.normalize
        if not self._is_classifier():
            return "zscore+scale"
        spread = scale_spread(X3, lengths)
        return "zscore+scale" if spread > AUTO_NORMALIZE_SPREAD else None

    def _validate_array(self, X):
        """Validate an array or wide DataFrame at predict time.

        Data of the fitted shape go through :meth:`BaseCNN._validate_X`
        (scikit-learn's checks of ``n_features_in_`` and feature names).
        3-D arrays of series of another length are read with
        ``check_array`` when the network takes any length, and refused
        otherwise; a 2-D array of another width is refused as scikit-learn
        refuses it (``n_features_in_``), with a hint to pass a 3-D array.
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
        if len(shape) == 2:
            # A 2-D array is scikit-learn's (n_samples, n_features): its width
            # is checked as every estimator checks it.
            hint = (" Series of another length go in a 3-D array (n, channels, "
                    "length) or a list of series." if self._takes_mask()
                    else f" {self._length_hint()}")
            raise ValueError(
                f"X has {shape[1]} features, but {name} is expecting "
                f"{self.n_features_in_} features as input.{hint}")
        if not self._takes_mask():
            raise ValueError(
                f"X holds series of length {shape[2]}, but {name} was fitted on "
                f"series of length {length}. {self._length_hint()}")
        dtype = getattr(X, "dtype", None)
        # An integer X is converted to a new float32 array: scaling it in
        # place leaves the caller's data alone.
        X = check_array(X, allow_nd=True, dtype=np.float32, order="C")
        return to_unit_range(X, dtype).reshape(len(X), channels, -1)

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
        return takes_mask(self.net_.module_)

    def _batch_transform(self):
        return Augmentation.from_param(self.augment)

    def _group_by_length(self):
        # Estimators pickled before the parameter existed batch at random.
        return getattr(self, "group_by_length", False)

    def _auto_max_epochs(self, X, lengths, n_train):
        steps = AUTO_EPOCHS["steps" if self._is_classifier() else "regressor_steps"]
        return auto_max_epochs(n_train, self.batch_size,
                               _padded_length(X, lengths, self.batch_size,
                                              grouped=self._group_by_length()),
                               steps=steps)

    def _make_module(self, n_outputs, module_kwargs):
        """One network, or ``n_ensemble`` of them in an :class:`Ensemble`.

        The members are built one after the other from the estimator's
        seed, so each starts from its own initial weights. Their layer
        groups are merged position by position (``freeze`` and ``lr_decay``
        act on every member alike).
        """
        if self.n_ensemble == 1:
            return self._keep_scale(*super()._make_module(n_outputs, module_kwargs),
                                    n_outputs)
        if self.weights is not None:
            raise ValueError(
                f"n_ensemble={self.n_ensemble} trains networks from their own "
                f"random initial weights; weights={self.weights!r} would make "
                f"them start alike. Use n_ensemble=1 with weights."
            )
        built = [self._keep_scale(
            *super(_SignalMixin, self)._make_module(n_outputs, module_kwargs),
            n_outputs) for _ in range(self.n_ensemble)]
        module = Ensemble(member for member, _ in built)
        groups = [(name, [p for _, member_groups in built
                          for p in member_groups[i][1]])
                  for i, (name, _) in enumerate(built[0][1])]
        return module, groups

    def _weights_keep_scale(self):
        """Whether ``weights`` is a file saved from a :class:`KeepScale` network.

        Such a file (``module_.state_dict()`` of a ``'zscore+scale'`` fit)
        holds the scale perceptron beside the network's own layers, under
        ``network.``; a file of the bare network holds neither.
        """
        if self.weights is None or not is_weights_file(self.weights):
            return False
        return any(key.startswith("scale_head.")
                   for key in read_state_dict(self.weights))

    def _load_weights(self, module, arch):
        kept = self._weights_keep_scale()
        normalize = getattr(self, "normalize_", None)
        if kept and normalize == "zscore+scale":
            return  # loaded into the wrapped network (_keep_scale)
        if kept:
            raise ValueError(
                f"weights={self.weights!r} was saved from a network trained with "
                f"normalize='zscore+scale' (its scale perceptron included), but "
                f"this estimator's normalize resolves to {normalize!r}. "
                f"Pass normalize='zscore+scale' to load it."
            )
        super()._load_weights(module, arch)

    def _keep_scale(self, module, groups, n_outputs):
        """Wrap the network in :class:`KeepScale` for ``normalize_='zscore+scale'``.

        The wrapper's scale layers join the last layer group (the head).
        ``weights`` saved from such a wrapped network are loaded into it
        whole; those of a bare network were loaded into ``module`` already,
        and the scale perceptron starts from scratch.
        """
        if getattr(self, "normalize_", None) != "zscore+scale":
            return module, groups
        wrapped = KeepScale(module, self.input_shape_[0], n_outputs)
        if self._weights_keep_scale():
            load_weights(wrapped, self.weights, self.architecture)
        scale = [p for name, p in wrapped.named_parameters()
                 if not name.startswith("network.")]
        groups = [(f"network.{name}", params) for name, params in groups]
        head_name, head = groups[-1]
        groups[-1] = (f"{head_name}+scale_head", [*head, *scale])
        return wrapped, groups

    def _check_network(self, module, lengths):
        if lengths is not None:
            self._check_takes_mask(module, lengths)

    def _check_takes_mask(self, module, lengths):
        if not takes_mask(module):
            raise ValueError(
                f"X holds series of unequal lengths ({lengths.min()} to "
                f"{lengths.max()}), but the network's forward takes no mask. "
                f"{self._length_hint()}"
            )


def _padded_length(X, lengths, batch_size, *, grouped=False):
    """Mean length of a training batch: the longest series of each batch.

    Equal lengths: the series' length. Unequal lengths: the mean, over the
    batches of a few seeded shuffles, of each batch's longest series (batches
    are trimmed to it, see :func:`skcnn._data.with_mask`), drawn at random
    or, with ``grouped``, as :func:`skcnn._data.group_by_length` draws them.
    """
    if lengths is None:
        return X.shape[-1]
    lengths = torch.as_tensor(np.asarray(lengths))
    n = len(lengths)
    generator = torch.Generator().manual_seed(0)
    sizes = batch_sizes(n, batch_size, balanced=True)
    longest = []
    for _ in range(5):
        perm = torch.randperm(n, generator=generator)
        if grouped and len(sizes) > 1:
            batches = group_by_length(perm, lengths[perm], sizes, generator)
        else:
            batches = perm.split(sizes)
        longest += [float(lengths[rows].max()) for rows in batches]
    return float(np.mean(longest))


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

    Nested and long (MultiIndex) DataFrames, pandas Series of series, lists
    and tuples, and 1-D object arrays go to :func:`to_padded`; numeric
    arrays, wide DataFrames, sparse matrices and other array-likes to
    scikit-learn's validation.
    """
    if isinstance(X, (list, tuple)):
        return True
    if isinstance(X, pd.DataFrame):
        return isinstance(X.index, pd.MultiIndex) or _is_nested(X)
    if isinstance(X, pd.Series):
        return X.dtype == object
    return isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1
