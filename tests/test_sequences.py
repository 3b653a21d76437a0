"""Tests of ``to_padded`` (every sequence format) and ``normalize_series``."""

import copy

import numpy as np
import pandas as pd
import pytest

from skcnn._sequences import lengths_to_mask, normalize_series, to_padded

RNG = np.random.default_rng(0)
# Three equal-length series (n=3, C=2, L=5) and three of lengths 5, 3, 4.
EQUAL = RNG.normal(size=(3, 2, 5)).astype(np.float32)
LENGTHS = np.array([5, 3, 4])
UNEQUAL = [EQUAL[i, :, :n].copy() for i, n in enumerate(LENGTHS)]
UNEQUAL_X3 = EQUAL * lengths_to_mask(LENGTHS, 5)[:, None, :]


def nested(series):
    """A DataFrame in sktime's nested_univ format: a column a channel."""
    return pd.DataFrame({f"dim_{c}": [pd.Series(s[c]) for s in series]
                         for c in range(series[0].shape[0])})


def long(series):
    """A DataFrame in aeon's and sktime's pd-multiindex format.

    Index (series, time), a column a channel; the series' ids are strings
    whose sorted order is not the order they appear in.
    """
    frames = [pd.DataFrame(s.T, columns=[f"c{c}" for c in range(s.shape[0])],
                           index=pd.MultiIndex.from_product(
                               [[f"case{len(series) - i}"], range(s.shape[1])],
                               names=["instance", "time"]))
              for i, s in enumerate(series)]
    return pd.concat(frames)


EQUAL_FORMATS = {
    "numpy3D": lambda: EQUAL.astype(np.float64),
    "numpy3D-float32": lambda: EQUAL.copy(),
    "numpy2D-univariate": lambda: EQUAL[:, 0].copy(),
    "wide-dataframe": lambda: pd.DataFrame(EQUAL[:, 0]),
    "nested-dataframe": lambda: nested(EQUAL),
    "list-of-2D": lambda: list(EQUAL),
    "list-of-1D": lambda: [s for s in EQUAL[:, 0]],
    "tuple-of-lists": lambda: tuple(s.tolist() for s in EQUAL[:, 0]),
    "pd-multiindex": lambda: long(EQUAL),
}
UNEQUAL_FORMATS = {
    "nested-dataframe": lambda: nested(UNEQUAL),
    "list-of-2D": lambda: [s.astype(np.float64) for s in UNEQUAL],
    "list-of-1D": lambda: [s[0] for s in UNEQUAL],
    "object-array-of-1D": lambda: np.array([s[0] for s in UNEQUAL], dtype=object),
    "list-of-pd-series": lambda: [pd.Series(s[0]) for s in UNEQUAL],
    "pd-multiindex": lambda: long(UNEQUAL),
}
UNIVARIATE = {"numpy2D-univariate", "wide-dataframe", "list-of-1D",
              "tuple-of-lists", "object-array-of-1D", "list-of-pd-series"}


@pytest.mark.parametrize("fmt", EQUAL_FORMATS)
def test_equal_length_formats_round_trip(fmt):
    X3, lengths = to_padded(EQUAL_FORMATS[fmt]())
    expected = EQUAL[:, :1] if fmt in UNIVARIATE else EQUAL
    assert X3.dtype == np.float32 and X3.shape == expected.shape
    np.testing.assert_array_equal(X3, expected)
    assert lengths is None


@pytest.mark.parametrize("fmt", UNEQUAL_FORMATS)
def test_unequal_length_formats_are_padded_on_the_right(fmt):
    X3, lengths = to_padded(UNEQUAL_FORMATS[fmt]())
    expected = UNEQUAL_X3[:, :1] if fmt in UNIVARIATE else UNEQUAL_X3
    assert X3.dtype == np.float32 and lengths.dtype == np.int64
    np.testing.assert_array_equal(X3, expected)
    np.testing.assert_array_equal(lengths, LENGTHS)


@pytest.mark.parametrize("fmt", [*EQUAL_FORMATS, *UNEQUAL_FORMATS])
def test_callers_data_is_neither_changed_nor_shared(fmt):
    make = {**EQUAL_FORMATS, **UNEQUAL_FORMATS}[fmt]
    X = make()
    before = copy.deepcopy(X)
    X3, _ = to_padded(X)
    X3 += 100.0
    after, reference = to_padded(X)[0], to_padded(before)[0]
    np.testing.assert_array_equal(after, reference)
    if isinstance(X, np.ndarray) and X.dtype != object:
        np.testing.assert_array_equal(X, before)
        assert not np.shares_memory(X3, X)


@pytest.mark.parametrize("loader, return_type, shape", [
    ("load_italy_power_demand", "nested_univ", (67, 1, 24)),
    ("load_basic_motions", "pd-multiindex", (40, 6, 100)),
])
def test_sktime_formats_agree(loader, return_type, shape):
    datasets = pytest.importorskip("sktime.datasets")
    load = getattr(datasets, loader)
    X, _ = load(split="train", return_X_y=True, return_type=return_type)
    X_numpy, _ = load(split="train", return_X_y=True, return_type="numpy3D")
    X3, lengths = to_padded(X)
    assert X3.shape == shape and lengths is None
    np.testing.assert_array_equal(X3, X_numpy.astype(np.float32))


def test_pd_multiindex_keeps_the_order_series_first_appear_in():
    # Rows of one series need not be contiguous; ids sort otherwise.
    X = long(UNEQUAL)
    X = X.iloc[np.argsort(X.index.get_level_values(1), kind="stable")]
    first = pd.unique(X.index.get_level_values(0))
    assert list(first) != sorted(first)
    X3, lengths = to_padded(X)
    expected = {f"case{len(UNEQUAL) - i}": i for i in range(len(UNEQUAL))}
    for k, case in enumerate(first):
        i = expected[case]
        assert lengths[k] == LENGTHS[i]
        np.testing.assert_array_equal(X3[k, :, :lengths[k]], UNEQUAL[i])


def test_sktime_unequal_length_multivariate():
    datasets = pytest.importorskip("sktime.datasets")
    X, _ = datasets.load_japanese_vowels(split="train", return_X_y=True)
    X3, lengths = to_padded(X)
    assert X3.shape == (270, 12, 26)
    assert lengths.min() == 7 and lengths.max() == 26
    first = X.iloc[0, 3].to_numpy()
    np.testing.assert_array_equal(X3[0, 3, :lengths[0]], first.astype(np.float32))
    assert not X3[0, :, lengths[0]:].any()


@pytest.mark.parametrize("X, error, match", [
    ([], ValueError, "X is empty"),
    (np.zeros((0, 4)), ValueError, "X is empty"),
    (np.zeros((2, 3, 4, 5)), ValueError, r"2-D \(n, L\) or 3-D \(n, C, L\); got 4-D"),
    (np.zeros(4), ValueError, "got 1-D"),
    ([np.ones((2, 4)), np.ones((3, 4))], ValueError,
     "same number of channels; series 0 has 2 but series 1 has 3"),
    (nested([np.ones((2, 4))]).assign(dim_1=[pd.Series([1.0, 2.0])]), ValueError,
     r"row 0 has channels of lengths \[4, 2\]"),
    ([np.ones(4), np.ones(0)], ValueError, r"series \[1\] are empty"),
    ([np.ones(4), np.ones((1, 4))], ValueError, "only 1-D .* or only 2-D"),
    (np.array([[1.0, np.nan]]), ValueError, r"finite values .* series \[0\]"),
    ([np.ones(3), np.array([1.0, np.inf])], ValueError, r"series \[1\] do not"),
    (np.array([[1e39, 0.0]]), ValueError, "beyond float32's range"),
    (nested([np.array([[1.0, np.nan]])]), ValueError, "finite values"),
    ([["a", "b"]], TypeError, "real numbers; series 0 holds the non-numeric "
                              "value 'a'"),
    (pd.DataFrame({"a": ["x", "y"]}), TypeError, "numeric columns"),
    (pd.DataFrame({"a": [pd.Series([1.0]), 2.0]}), TypeError,
     "row 1, column 'a' holds float"),
    (pd.DataFrame({"a": [pd.Series(["u", "v"])]}), TypeError,
     "row 0, column 'a' holds the non-numeric value 'u'"),
    (pd.Series([1.0, 2.0]), TypeError, "pass it as a list"),
    (long(UNEQUAL).set_index(pd.Index([0] * 12, name="x"), append=True),
     ValueError, r"two index levels \(series, time\).* got 3 levels"),
    (long(UNEQUAL).assign(c1=pd.Timestamp(0)), TypeError,
     r"long \(MultiIndex\) DataFrame must have numeric columns; columns \['c1'\]"),
    ({"a": [1.0]}, TypeError, "X must be a numpy array .* got dict"),
])
def test_invalid_input_is_refused_with_a_clear_message(X, error, match):
    with pytest.raises(error, match=match):
        to_padded(X)


def test_zscore_over_the_real_length_of_each_series_and_channel():
    X3 = UNEQUAL_X3.copy()
    X3[1, 1, :3] = 7.0  # a constant channel
    before = X3.copy()
    Z = normalize_series(X3, LENGTHS, "zscore")
    np.testing.assert_array_equal(X3, before)
    assert Z.dtype == np.float32
    for i, n in enumerate(LENGTHS):
        for c in range(2):
            real = X3[i, c, :n].astype(np.float64)
            if i == 1 and c == 1:
                expected = np.zeros(n)
            else:
                expected = (real - real.mean()) / real.std()
            np.testing.assert_allclose(Z[i, c, :n], expected, atol=1e-6)
            assert not Z[i, c, n:].any()


def test_minmax_and_none():
    Z = normalize_series(UNEQUAL_X3, LENGTHS, "minmax")
    mask = lengths_to_mask(LENGTHS, 5)[:, None, :].repeat(2, axis=1)
    assert Z[mask].min() == 0.0 and Z[mask].max() == 1.0
    np.testing.assert_allclose(np.where(mask, Z, 0).max(axis=-1), 1.0)
    same = normalize_series(EQUAL, None, None)
    np.testing.assert_array_equal(same, EQUAL)
    assert same is not EQUAL
    np.testing.assert_array_equal(normalize_series(np.full((1, 1, 3), 2.0)),
                                  np.zeros((1, 1, 3)))


def test_normalize_series_validates_its_arguments():
    with pytest.raises(ValueError, match=r"method must be one of \[None, 'zscore'"):
        normalize_series(EQUAL, None, "l2")
    with pytest.raises(ValueError, match=r"lengths must hold 3 integers in \[1, 5\]"):
        normalize_series(EQUAL, [5, 6, 1])
    with pytest.raises(ValueError, match=r"X3 must be 3-D"):
        normalize_series(EQUAL[0])


# -- mutants of _sequences.py that survived the sampled run of 2026-12-02 ------
def test_a_pandas_series_of_series_is_a_collection():
    X3, lengths = to_padded(pd.Series([np.arange(3.0), pd.Series(np.arange(5.0))]))
    np.testing.assert_array_equal(X3, [[[0, 1, 2, 0, 0]], [[0, 1, 2, 3, 4]]])
    assert X3.dtype == np.float32 and lengths.tolist() == [3, 5]


def test_array_messages_and_the_smallest_series():
    with pytest.raises(TypeError, match=r"^Series values must be real numbers; the array "
                       r"holds the non-numeric value 'a' \(str_\)\.$"):
        to_padded(np.array([["a", "b"]]))
    for shape in [(2, 0, 5), (2, 3, 0)]:
        with pytest.raises(ValueError, match=r"^Series must have at least one channel and "
                           rf"one time step; got an array of shape \({shape[0]}, "
                           rf"{shape[1]}, {shape[2]}\)\.$"):
            to_padded(np.zeros(shape))
    # One channel of one time step is a series.
    X3, lengths = to_padded(np.full((2, 1, 1), 7.0))
    assert X3.shape == (2, 1, 1) and lengths is None and (X3 == 7).all()
