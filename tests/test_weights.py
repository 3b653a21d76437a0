"""sample_weight in fit: what weights must do, exactly where training allows it."""

import numpy as np
import pytest
import sklearn
from sklearn.ensemble import AdaBoostClassifier
from sklearn.model_selection import cross_validate

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor

SMALL = dict(architecture="convnet", channels=(4,), hidden_units=(8,), max_epochs=2, batch_size=8,
             random_state=0, device="cpu")
ESTIMATORS = [CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor]


def _data(Estimator, n=48, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(n, 16)).astype(np.float32)
    if Estimator in (CNNClassifier, Conv1DClassifier):
        return X, (X[:, :8].mean(1) > 0.5).astype(int)
    return X, X[:, :4].sum(1)


def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_equal_weights_train_exactly_as_no_weights(Estimator):
    X, y = _data(Estimator)
    ref = _outputs(Estimator(**SMALL).fit(X, y), X)
    for w in (np.ones(len(X)), np.full(len(X), 3.0)):
        got = _outputs(Estimator(**SMALL).fit(X, y, sample_weight=w), X)
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_zero_weight_is_removing_the_sample(Estimator):
    X, y = _data(Estimator)
    w = np.ones(len(X))
    w[::3] = 0
    keep = w > 0
    removed = _outputs(Estimator(**SMALL).fit(X[keep], y[keep]), X)
    weighted = _outputs(Estimator(**SMALL).fit(X, y, sample_weight=w), X)
    np.testing.assert_array_equal(weighted, removed)


@pytest.mark.parametrize("Estimator", [CNNClassifier, Conv1DRegressor])
def test_scaling_all_weights_changes_nothing(Estimator):
    X, y = _data(Estimator)
    w = np.random.RandomState(1).uniform(0.2, 2, size=len(X))
    a = _outputs(Estimator(**SMALL).fit(X, y, sample_weight=w), X)
    b = _outputs(Estimator(**SMALL).fit(X, y, sample_weight=100 * w), X)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    unweighted = _outputs(Estimator(**SMALL).fit(X, y), X)
    assert np.abs(a - unweighted).max() > 1e-4  # the weights did act


def _contradictory(n=120, seed=0):
    """Two halves of the same inputs with opposite labels/targets."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(n, 16)).astype(np.float32)
    signal = X[:, :8].mean(1) - X[:, 8:].mean(1)
    half = np.arange(n) < n // 2
    return X, signal, half


@pytest.mark.parametrize("Estimator", [Conv1DClassifier, CNNRegressor])
def test_weights_choose_which_samples_are_fitted(Estimator):
    # Half A follows the rule, half B the opposite rule; weighting A (or B)
    # 100 times more decides which rule the network learns.
    X, signal, half = _contradictory()
    y = np.where(half, signal, -signal)
    if Estimator is Conv1DClassifier:
        y = (y > 0).astype(int)
    X_test, s_test, _ = _contradictory(seed=1)
    params = dict(SMALL, max_epochs=15, lr=1e-2)
    agreement = {}
    for favoured in ("A", "B"):
        w = np.where(half == (favoured == "A"), 1.0, 0.01)
        pred = Estimator(**params).fit(X, y, sample_weight=w).predict(X_test)
        if Estimator is Conv1DClassifier:
            agreement[favoured] = np.mean(pred == (s_test > 0))
        else:
            agreement[favoured] = np.corrcoef(pred, s_test)[0, 1]
    if Estimator is Conv1DClassifier:
        assert agreement["A"] > 0.8 and agreement["B"] < 0.2, agreement
    else:
        assert agreement["A"] > 0.8 and agreement["B"] < -0.8, agreement


def test_class_weight_multiplies_sample_weight():
    X, y = _data(CNNClassifier)
    by_class = CNNClassifier(class_weight={0: 2.0, 1: 1.0}, **SMALL).fit(X, y)
    by_sample = CNNClassifier(**SMALL).fit(X, y, sample_weight=np.where(y == 0, 2.0, 1.0))
    np.testing.assert_array_equal(by_class.predict_proba(X), by_sample.predict_proba(X))
    both = CNNClassifier(class_weight={0: 2.0, 1: 1.0}, **SMALL).fit(
        X, y, sample_weight=np.where(y == 0, 0.5, 1.0))
    np.testing.assert_array_equal(both.predict_proba(X),
                                  CNNClassifier(**SMALL).fit(X, y).predict_proba(X))


def test_adaboost_boosts_cnns(digits):
    X, y = digits
    X, y = X[:300], y[:300] % 2  # odd vs even digits
    boost = AdaBoostClassifier(
        estimator=CNNClassifier(channels=(8,), hidden_units=(16,), max_epochs=5,
                                lr=1e-2, device="cpu"),
        n_estimators=3, random_state=0).fit(X, y)
    assert len(boost.estimators_) == 3
    assert boost.score(X, y) > 0.85
    # SAMME reweighted the samples: the networks differ.
    p0, p1 = (e.predict_proba(X[:50]) for e in boost.estimators_[:2])
    assert np.abs(p0 - p1).max() > 1e-3


def test_sample_weight_through_metadata_routing():
    X, y = _data(Conv1DClassifier, n=40)
    w = np.linspace(0.5, 1.5, len(X))
    with sklearn.config_context(enable_metadata_routing=True):
        est = Conv1DClassifier(**SMALL).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=False)
        res = cross_validate(est, X, y, cv=2, params={"sample_weight": w})
    assert res["test_score"].shape == (2,)


@pytest.mark.parametrize("w, match", [
    (-np.ones(48), "Negative values in data passed to `sample_weight`"),
    (np.zeros(48), "at least one non-zero"),
    (np.ones(47), r"sample_weight.shape == \(47,\), expected \(48,\)"),
    (np.ones((48, 2)), "Sample weights must be 1D"),
    (np.r_[np.nan, np.ones(47)], "sample_weight contains NaN"),
    (np.r_[1.0, np.zeros(47)], "at least 2 samples of non-zero weight"),
])
@pytest.mark.parametrize("Estimator", [CNNClassifier, Conv1DRegressor])
def test_bad_sample_weight(Estimator, w, match):
    X, y = _data(Estimator)
    w_before = w.copy()
    with pytest.raises(ValueError, match=match):
        Estimator(**SMALL).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(w, w_before)
