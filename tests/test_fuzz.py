"""Malformed inputs, generated systematically, get clear errors and harm nothing.

For each estimator (and ``PretrainedFeatureExtractor`` with random weights)
every case below must raise ``ValueError``, ``TypeError`` or
``FileNotFoundError`` whose message names what was expected, never a raw
torch error; the caller's arrays must be unchanged; and a fitted estimator
must predict afterwards exactly as before.
"""

import copy

import numpy as np
import pytest

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor
from skcnn.pretrained import PretrainedFeatureExtractor

SMALL = dict(architecture="convnet", channels=(4,), hidden_units=(8,), max_epochs=1, batch_size=8,
             random_state=0, device="cpu")
ERRORS = (ValueError, TypeError, FileNotFoundError)

# What a message must contain for it to say what was expected (any of).
EXPECTED_WORDS = ("expect", "must", "should", "need", "got", "requires", "found",
                  "contains", "invalid", "not supported", "unknown", "cannot",
                  "could not", "does not", "at least", "fitted on", "numeric",
                  "pass ")


def _image_data(n=16, seed=0):
    rng = np.random.RandomState(seed)
    return rng.uniform(size=(n, 1, 8, 8)).astype(np.float32)


def _signal_data(n=16, seed=0):
    rng = np.random.RandomState(seed)
    return rng.uniform(size=(n, 2, 12)).astype(np.float32)


def _targets(Estimator, n=16):
    if Estimator in (CNNClassifier, Conv1DClassifier):
        return np.arange(n) % 2
    return np.linspace(0, 1, n)


def _valid(Estimator):
    X = _image_data() if Estimator in (CNNClassifier, CNNRegressor) else _signal_data()
    return X, _targets(Estimator)


def _x_cases(X):
    """Malformed variants of a valid X of shape (n, C, *spatial)."""
    n = len(X)
    nan, inf, huge = X.copy(), X.copy(), X.astype(np.float64)
    nan.flat[5] = np.nan
    inf.flat[7] = -np.inf
    huge.flat[3] = 1e300  # beyond float32
    return {
        "none": None,
        "scalar": 3.0,
        "1d": X.reshape(-1)[:n],
        "too_many_dims": X[:, None, None],
        "nan": nan,
        "inf": inf,
        "huge": huge,
        "empty_samples": X[:0],
        "no_features": np.zeros((n, 0), dtype=np.float32),
        "empty_axis": X[..., :0],
        "complex": X.astype(np.complex64) + 1j,
        "strings": np.full(X.shape, "a"),
        "object_strings": np.full(X.shape, "x", dtype=object),
        "object_none": np.full(X.shape, None, dtype=object),
        "ragged_nested": [[[1.0, 2.0], [3.0]], [[1.0], [2.0, 3.0]]] * (n // 2),
        "dict": {"x": X},
    }


def _y_cases(Estimator, n=16):
    y = _targets(Estimator, n)
    nan = y.astype(float)
    nan[2] = np.nan
    inf = y.astype(float)
    inf[4] = np.inf
    cases = {
        "none": None,
        "short": y[:-1],
        "3d": y.reshape(n, 1, 1),
        "nan": nan,
        "inf": inf,
        "object_none": np.full(n, None, dtype=object),
    }
    if Estimator in (CNNClassifier, Conv1DClassifier):
        cases["continuous"] = np.linspace(0, 1, n)
        cases["one_class"] = np.zeros(n, dtype=int)
        cases["multiclass_multioutput"] = np.c_[y, 2 * y + (np.arange(n) % 3 == 0)]
    else:
        cases["strings"] = np.array(["a", "b"] * (n // 2))
    return cases


def _fit_predict_cases(Estimator):
    """``(name, X)`` for predict-time faults of a fitted estimator."""
    X, _ = _valid(Estimator)
    cases = {k: v for k, v in _x_cases(X).items()}
    cases["wrong_channels"] = np.repeat(X, 3, axis=1)
    cases["wrong_spatial"] = X[..., :-1]
    cases["wrong_flat_features"] = X.reshape(len(X), -1)[:, :-1]
    return cases


ESTIMATORS = [CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor]


def _snapshot(value):
    return copy.deepcopy(value)


def _assert_unchanged(before, after):
    if isinstance(before, np.ndarray):
        assert before.dtype == after.dtype and before.shape == after.shape
        if before.dtype == object or before.dtype.kind in "US":
            assert (before == after).all()
        else:
            np.testing.assert_array_equal(before, after)  # NaN == NaN here
    elif isinstance(before, (list, dict)):
        assert repr(before) == repr(after)


def _assert_clear_error(excinfo, case):
    message = str(excinfo.value)
    assert "Traceback" not in message
    assert any(w in message.lower() for w in EXPECTED_WORDS), (case, message)
    # No raw torch error: the error is raised by skcnn or scikit-learn.
    module = type(excinfo.value).__module__
    assert not module.startswith("torch"), (case, module, message)
    tb = excinfo.traceback[-1]
    assert "/torch/" not in str(tb.path), (case, str(tb.path), message)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_fit_with_malformed_X(Estimator):
    X, y = _valid(Estimator)
    for case, X_bad in _x_cases(X).items():
        y_case = y if not isinstance(X_bad, (list, np.ndarray)) or len(X_bad) == len(y) \
            else y[:len(X_bad)]
        before = _snapshot(X_bad)
        with pytest.raises(ERRORS) as excinfo:
            Estimator(**SMALL).fit(X_bad, y_case)
        _assert_clear_error(excinfo, case)
        _assert_unchanged(before, X_bad)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_fit_with_malformed_y(Estimator):
    X, _ = _valid(Estimator)
    X_before = X.copy()
    for case, y_bad in _y_cases(Estimator).items():
        before = _snapshot(y_bad)
        with pytest.raises(ERRORS) as excinfo:
            Estimator(**SMALL).fit(X, y_bad)
        _assert_clear_error(excinfo, case)
        _assert_unchanged(before, y_bad)
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_predict_with_malformed_X_leaves_the_estimator_usable(Estimator):
    X, y = _valid(Estimator)
    est = Estimator(**SMALL).fit(X, y)
    reference = est.predict(X)
    methods = ["predict"] + (["predict_proba", "score"] if hasattr(est, "predict_proba")
                             else ["score"])
    for case, X_bad in _fit_predict_cases(Estimator).items():
        for method in methods:
            before = _snapshot(X_bad)
            args = (X_bad, y) if method == "score" else (X_bad,)
            if method == "score" and isinstance(X_bad, np.ndarray) and len(X_bad) != len(y):
                args = (X_bad, y[:len(X_bad)])
            with pytest.raises(ERRORS) as excinfo:
                getattr(est, method)(*args)
            _assert_clear_error(excinfo, f"{method}:{case}")
            _assert_unchanged(before, X_bad)
        np.testing.assert_array_equal(est.predict(X), reference)


@pytest.mark.parametrize("Estimator", [CNNClassifier, Conv1DClassifier])
def test_score_with_labels_unseen_at_fit(Estimator):
    # Labels of the same type that fit never saw are wrong predictions
    # (scikit-learn's accuracy); labels of another type are an error.
    X, y = _valid(Estimator)
    est = Estimator(**SMALL).fit(X, y)
    pred = est.predict(X)
    y_unseen = y.copy()
    y_unseen[:4] = 7
    assert est.score(X, y_unseen) == pytest.approx(np.mean(pred[4:] == y[4:]) * 12 / 16)
    with pytest.raises(ValueError, match="Mix of label input types"):
        est.score(X, np.array(["a", "b"] * 8))
    with pytest.raises(ValueError, match="mix of multilabel-indicator and"):
        est.score(X, np.c_[y, 1 - y])
    np.testing.assert_array_equal(est.predict(X), pred)


# -- the extractor --------------------------------------------------------------
@pytest.fixture(scope="module")
def extractor():
    X = np.random.RandomState(0).uniform(size=(4, 3, 16, 16)).astype(np.float32)
    return PretrainedFeatureExtractor("resnet18", weights=None, input_size=16,
                                      device="cpu", random_state=0).fit(X), X


def test_extractor_with_malformed_inputs(extractor, tmp_path):
    est, X = extractor
    reference = est.transform(X)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    cases = dict(_x_cases(X))
    cases.pop("empty_axis")  # zero-width images: checked below
    cases.update({
        "missing_file": [str(tmp_path / "missing.png")],
        "corrupt_file": [str(corrupt)],
        "text_file": [str(text)],
        "single_path": str(corrupt),
        "mixed_list": [X[0], str(corrupt)],
        "four_channels": np.concatenate([X, X[:, :1]], axis=1),
        "zero_width": X[..., :0],
        "ragged_images": [X[0], X[1, :2]],
    })
    for case, X_bad in cases.items():
        for method in ("fit", "transform"):
            target = est if method == "transform" else PretrainedFeatureExtractor(
                "resnet18", weights=None, input_size=16, device="cpu")
            before = _snapshot(X_bad)
            with pytest.raises(ERRORS) as excinfo:
                getattr(target, method)(X_bad)
            _assert_clear_error(excinfo, f"{method}:{case}")
            _assert_unchanged(before, X_bad)
    np.testing.assert_array_equal(est.transform(X), reference)
