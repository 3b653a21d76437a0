"""Sequence formats -> one zero-padded float32 array, and per-series scaling.

Time-series libraries store a collection of series in several ways; this
module turns each into an array ``X3`` of shape ``(n, C, L_max)``, the
series left-aligned and zero-padded on the right, plus their lengths:

==========================================  =================================
Format                                      Example
==========================================  =================================
numpy ``(n, L)``                            univariate, equal length
numpy ``(n, C, L)``                         aeon's ``numpy3D``, sktime's
                                            ``numpy3D``
pandas wide DataFrame                       one row a univariate series
pandas nested DataFrame                     sktime's ``nested_univ``: a cell
                                            a ``pd.Series``, a column a
                                            channel
pandas long DataFrame                       aeon's and sktime's
                                            ``pd-multiindex``: index
                                            (series, time), a column a
                                            channel
list of 1-D arrays                          univariate, unequal lengths
list of 2-D ``(C, L_i)`` arrays             aeon's ``np-list``
==========================================  =================================

Missing values are not padding here: NaN or infinite values are refused, so
pass unequal-length series as a list or a nested DataFrame, not NaN-padded.
"""

import numbers

import numpy as np
import pandas as pd

__all__ = ["lengths_to_mask", "normalize_series", "to_padded"]

_ACCEPTED = (
    "a numpy array of shape (n, L) or (n, C, L), a pandas DataFrame (wide: "
    "one row a series; nested: each cell a pd.Series, one column a "
    "channel; or long: a (series, time) MultiIndex, one column a channel), "
    "or a list of 1-D (L_i,) or 2-D (C, L_i) arrays"
)
_NORMALIZATIONS = (None, "zscore", "minmax")


def _numeric(values, where):
    """``values`` as a new float32 array; TypeError if they are not numbers.

    Values beyond float32's range become infinite (and are refused later).
    """
    try:
        array = np.asarray(values)
    except ValueError as exc:  # a ragged nested list
        raise ValueError(
            f"Series values must form a 1-D (L,) or 2-D (C, L) array whose "
            f"channels have one length; {where} is ragged: {exc}"
        ) from None
    with np.errstate(over="ignore"):
        if array.dtype.kind in "biuf":
            return array.astype(np.float32)  # always a copy
        if array.dtype.kind == "O":
            try:
                return array.astype(np.float32)
            except (TypeError, ValueError):
                pass
    sample = next((v for v in array.ravel()
                   if not isinstance(v, (numbers.Real, np.bool_))), None)
    got = (f"values of dtype {array.dtype}" if sample is None else
           f"the non-numeric value {str(sample)!r} ({type(sample).__name__})")
    raise TypeError(
        f"Series values must be real numbers; {where} holds {got}."
    )


def _series_list_from_dataframe(X):
    """The series of a nested DataFrame, each as a (C, L_i) float32 array."""
    cells = X.to_numpy(dtype=object)
    out = []
    for i, row in enumerate(cells):
        channels = []
        for j, cell in enumerate(row):
            if isinstance(cell, pd.Series):
                cell = cell.to_numpy()
            elif not isinstance(cell, (np.ndarray, list, tuple)):
                raise TypeError(
                    f"In a nested DataFrame every cell must be a pd.Series or "
                    f"a 1-D array; row {i}, column {X.columns[j]!r} holds "
                    f"{type(cell).__name__} {cell!r}."
                )
            values = _numeric(cell, f"row {i}, column {X.columns[j]!r}")
            if values.ndim != 1:
                raise ValueError(
                    f"In a nested DataFrame every cell must be a 1-D series; "
                    f"row {i}, column {X.columns[j]!r} has shape {values.shape}."
                )
            channels.append(values)
        lengths = {len(c) for c in channels}
        if len(lengths) > 1:
            raise ValueError(
                f"The channels of one series must have the same length; "
                f"row {i} has channels of lengths {[len(c) for c in channels]}."
            )
        out.append(np.stack(channels))
    return out


def _check_numeric_columns(X, kind):
    """TypeError naming the columns of ``X`` that hold neither numbers nor objects."""
    non_numeric = [c for c in X.columns
                   if not (pd.api.types.is_numeric_dtype(X[c])
                           or X[c].dtype == object)]
    if non_numeric:
        raise TypeError(
            f"A {kind} DataFrame must have numeric columns; columns "
            f"{non_numeric[:5]} have dtypes "
            f"{[str(X[c].dtype) for c in non_numeric[:5]]}."
        )


def _series_list_from_multiindex(X):
    """The series of a long DataFrame (``pd-multiindex``), each as (C, L_i).

    The first index level names the series (in the order they first
    appear, which is the order of ``y``), the second the time steps (rows
    in time order); a column is a channel.
    """
    if X.index.nlevels != 2:
        raise ValueError(
            f"A DataFrame with a MultiIndex must have two index levels "
            f"(series, time), as aeon's and sktime's 'pd-multiindex'; got "
            f"{X.index.nlevels} levels {list(X.index.names)}."
        )
    _check_numeric_columns(X, "long (MultiIndex)")
    if all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns):
        with np.errstate(over="ignore"):  # beyond float32: inf, refused later
            values = X.to_numpy(dtype=np.float32, na_value=np.nan)
    else:  # object columns: their non-numbers are named by _numeric
        values = _numeric(X.to_numpy(dtype=object, na_value=np.nan, copy=True),
                          "the DataFrame")
    codes, _ = pd.factorize(X.index.get_level_values(0), sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.cumsum(np.bincount(codes))[:-1]
    return [np.ascontiguousarray(rows.T) for rows in np.split(values[order], bounds)]


def _is_nested(X):
    """Whether a DataFrame holds series in its cells (sktime's nested_univ)."""
    for column in X.columns:
        if X[column].dtype == object and len(X):
            if isinstance(X[column].iloc[0], (pd.Series, np.ndarray, list, tuple)):
                return True
    return False


def _series_list_from_sequence(X):
    """The series of a list of 1-D or 2-D arrays, each as (C, L_i) float32."""
    out = []
    ndims = set()
    for i, series in enumerate(X):
        if isinstance(series, (pd.Series, pd.DataFrame)):
            series = series.to_numpy()
        values = _numeric(series, f"series {i}")
        if values.ndim not in (1, 2):
            raise ValueError(
                f"Each series of a list must be a 1-D (L,) array (univariate) "
                f"or a 2-D (C, L) array; series {i} has shape {values.shape}."
            )
        ndims.add(values.ndim)
        out.append(values[None, :] if values.ndim == 1 else values)
    if len(ndims) > 1:
        raise ValueError(
            "A list of series must hold only 1-D (univariate) or only 2-D "
            "(C, L) arrays; got a mix of both."
        )
    return out


def _pad(series):
    """Stack (C, L_i) arrays into (n, C, L_max) float32 and their lengths."""
    n_channels = [s.shape[0] for s in series]
    if len(set(n_channels)) > 1:
        first = n_channels[0]
        i = next(k for k, c in enumerate(n_channels) if c != first)
        raise ValueError(
            f"All series must have the same number of channels; series 0 has "
            f"{first} but series {i} has {n_channels[i]}."
        )
    lengths = np.array([s.shape[1] for s in series], dtype=np.int64)
    X3 = np.zeros((len(series), n_channels[0], lengths.max()), dtype=np.float32)
    for i, s in enumerate(series):
        X3[i, :, :s.shape[1]] = s
    return X3, lengths


def to_padded(X):
    """Convert a collection of series to a zero-padded ``(n, C, L_max)`` array.

    Parameters
    ----------
    X : array-like, DataFrame or list
        ``n`` series, in one of these formats:

        - numpy array ``(n, L)`` (univariate) or ``(n, C, L)`` (aeon's and
          sktime's ``numpy3D``);
        - pandas DataFrame, wide (one row a univariate series, numeric
          columns), nested (sktime's ``nested_univ``: each cell a
          ``pd.Series`` or 1-D array, one column a channel; lengths may
          differ between rows but not between the channels of a row) or
          long (aeon's and sktime's ``pd-multiindex``: a two-level index
          (series, time), one row a time step, one column a channel; the
          series in the order they first appear, their rows in time
          order);
        - list (or tuple) of 1-D arrays (univariate series, lengths may
          differ) or of 2-D ``(C, L_i)`` arrays (aeon's ``np-list``).

    Returns
    -------
    X3 : ndarray of float32, shape (n, C, L_max)
        The series, left-aligned and zero-padded on the right. Always a new
        array: the caller's data is never modified or shared.
    lengths : ndarray of int64, shape (n,), or None
        The length of each series; ``None`` when they all have length
        ``L_max``.

    Raises
    ------
    TypeError
        If ``X`` is of none of these types, or holds non-numeric values.
    ValueError
        If ``X`` is empty, has the wrong number of dimensions, holds an
        empty series, NaN or infinite values, or series with different
        numbers of channels.

    Examples
    --------
    >>> import numpy as np
    >>> X3, lengths = to_padded([np.array([1.0, 2.0, 3.0]), np.array([4.0])])
    >>> X3.shape, lengths.tolist()
    ((2, 1, 3), [3, 1])
    >>> X3[1, 0].tolist()
    [4.0, 0.0, 0.0]
    """
    if isinstance(X, pd.Series):
        if not (len(X) and isinstance(X.iloc[0], (pd.Series, np.ndarray, list))):
            raise TypeError(
                f"X must be {_ACCEPTED}; got a pd.Series of "
                f"{X.dtype} values (one series? pass it as a list [series])."
            )
        X = X.to_frame()
    if isinstance(X, pd.DataFrame):
        if isinstance(X.index, pd.MultiIndex):
            series = _series_list_from_multiindex(X)
        elif _is_nested(X):
            series = _series_list_from_dataframe(X)
        else:
            _check_numeric_columns(X, "wide (one row a series)")
            series = _numeric(X.to_numpy(dtype=object, na_value=np.nan, copy=True),
                              "the DataFrame")
    elif isinstance(X, (list, tuple)):
        series = _series_list_from_sequence(X)
    elif isinstance(X, np.ndarray) or hasattr(X, "__array__"):
        array = np.asarray(X)
        if array.dtype == object and array.ndim == 1:
            series = _series_list_from_sequence(list(array))
        else:
            series = _numeric(array, "the array")
    else:
        raise TypeError(f"X must be {_ACCEPTED}; got {type(X).__name__}.")

    if isinstance(series, np.ndarray):
        if series.ndim == 2:
            series = series[:, None, :]
        elif series.ndim != 3:
            raise ValueError(
                f"An array of series must be 2-D (n, L) or 3-D (n, C, L); got "
                f"{series.ndim}-D of shape {series.shape}."
            )
    if len(series) == 0:
        raise ValueError(f"X is empty: it must hold at least one series; got "
                         f"{type(X).__name__} of 0 series.")
    if isinstance(series, np.ndarray):
        if series.shape[1] == 0 or series.shape[2] == 0:
            raise ValueError(
                f"Series must have at least one channel and one time step; "
                f"got an array of shape {series.shape}."
            )
        X3, lengths = series, None  # already a new float32 array
    else:
        empty = [i for i, s in enumerate(series) if not s.size]
        if empty:
            raise ValueError(
                f"Series must have at least one channel and one time step; "
                f"series {empty[:5]} are empty."
            )
        X3, lengths = _pad(series)
        if (lengths == X3.shape[-1]).all():
            lengths = None

    bad = ~np.isfinite(X3).all(axis=(1, 2))
    if bad.any():
        raise ValueError(
            f"Series must hold finite values (no NaN or infinity, also none "
            f"beyond float32's range); series {np.flatnonzero(bad)[:5].tolist()} "
            f"do not. Pass unequal-length series as a list or a nested "
            f"DataFrame, not padded with NaN."
        )
    return X3, lengths


def lengths_to_mask(lengths, max_length):
    """Boolean mask ``(n, max_length)``, True on the real steps of each series.

    Parameters
    ----------
    lengths : array-like of int, shape (n,)
        Length of each series.
    max_length : int
        Padded length.

    Returns
    -------
    mask : ndarray of bool, shape (n, max_length)
    """
    return np.arange(max_length)[None, :] < np.asarray(lengths)[:, None]


def normalize_series(X3, lengths=None, method="zscore"):
    """Scale every series and channel over its own real length.

    Deep-learning papers on the UCR archive z-normalise each series; this
    does so per series and per channel, ignoring the padding.

    Parameters
    ----------
    X3 : ndarray of shape (n, C, L)
        Zero-padded series, as returned by :func:`to_padded`.
    lengths : array-like of int, shape (n,), default=None
        Real length of each series; ``None`` when all have length ``L``.
    method : {'zscore', 'minmax'} or None, default='zscore'
        ``'zscore'``: subtract the mean and divide by the standard deviation
        (``ddof=0``); ``'minmax'``: scale to [0, 1]; ``None``: no scaling.
        A constant series/channel becomes zeros with either method.

    Returns
    -------
    X3_scaled : ndarray of float32, shape (n, C, L)
        A new array; padded steps stay zero.

    Raises
    ------
    ValueError
        If ``method`` is unknown, ``X3`` is not 3-D or ``lengths`` does not
        match it.
    """
    if method not in _NORMALIZATIONS:
        raise ValueError(
            f"method must be one of {list(_NORMALIZATIONS)}; got {method!r}."
        )
    X = np.array(X3, dtype=np.float64)  # a copy
    if X.ndim != 3:
        raise ValueError(f"X3 must be 3-D (n, C, L); got shape {X.shape}.")
    n, _, L = X.shape
    if lengths is None:
        lengths = np.full(n, L)
    lengths = np.asarray(lengths)
    if lengths.shape != (n,) or (lengths < 1).any() or (lengths > L).any():
        raise ValueError(
            f"lengths must hold {n} integers in [1, {L}] (one per series of "
            f"X3 of shape {X.shape}); got {lengths!r}."
        )
    mask = lengths_to_mask(lengths, L)[:, None, :]
    X = np.where(mask, X, 0.0)
    if method is not None:
        low = np.where(mask, X, np.inf).min(axis=-1, keepdims=True)
        high = np.where(mask, X, -np.inf).max(axis=-1, keepdims=True)
        constant = high == low
        if method == "zscore":
            shift, scale = _masked_moments(X, mask, lengths)
        else:
            shift, scale = low, high - low
        scale = np.where(constant, 1.0, scale)
        X = np.where(mask & ~constant, (X - shift) / scale, 0.0)
    return X.astype(np.float32)


def scale_spread(X3, lengths=None):
    """How far the series' scales spread: per channel, p90 / p10 of their stds.

    Parameters
    ----------
    X3 : ndarray of shape (n, C, L)
        Zero-padded series, as returned by :func:`to_padded`.
    lengths : array-like of int, shape (n,), default=None
        Real length of each series; ``None`` when all have length ``L``.

    Returns
    -------
    spread : float
        The largest, over the channels, ratio of the 90th to the 10th
        percentile of the series' standard deviations (over their real
        length); 1.0 when the 90th percentile is 0 (constant channels), and
        ``inf`` when only the 10th is.
    """
    X = np.asarray(X3, dtype=np.float64)
    n, _, L = X.shape
    lengths = np.full(n, L) if lengths is None else np.asarray(lengths)
    mask = lengths_to_mask(lengths, L)[:, None, :]
    std = _masked_moments(np.where(mask, X, 0.0), mask, lengths)[1][..., 0]
    high, low = np.percentile(std, 90, axis=0), np.percentile(std, 10, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(high == 0, 1.0, high / low)
    return float(ratio.max())


def _masked_moments(X, mask, lengths):
    """Mean and standard deviation (``ddof=0``) of each series and channel over
    its real length; ``X`` is zero on the padding. Shapes ``(n, C, 1)``."""
    count = np.asarray(lengths)[:, None, None]
    mean = X.sum(axis=-1, keepdims=True) / count
    std = np.sqrt((np.where(mask, X - mean, 0.0) ** 2).sum(axis=-1, keepdims=True) / count)
    return mean, std

