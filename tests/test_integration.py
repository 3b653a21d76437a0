"""The estimators inside scikit-learn's tools: clone, Pipeline, search, pickle."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor
from skcnn.models.convnet import ConvNet
from skcnn.models.lenet import LeNet5

from .conftest import FAST


def test_clone_keeps_parameters_and_drops_fitted_state(small_digits):
    X, y = small_digits
    clf = CNNClassifier(module__dropout=0.1, **FAST).fit(X, y)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert twin.get_params()["module__dropout"] == 0.1
    assert not hasattr(twin, "net_")


def test_pipeline_with_nested_set_params(small_digits):
    X, y = small_digits
    flat = X.reshape(len(X), -1)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("cnn", CNNClassifier(input_shape=(8, 8), **FAST))])
    pipe.set_params(cnn__channels=(4,), cnn__module__hidden_units=(16,),
                    cnn__max_epochs=10, cnn__lr=1e-2)
    pipe.fit(flat, y)
    module = pipe.named_steps["cnn"].module_
    assert module.features[0][0].out_channels == 4
    assert module.head[-1].in_features == 16
    assert pipe.score(flat, y) > 0.5


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_grid_search(small_digits, n_jobs):
    X, y = small_digits
    grid = GridSearchCV(
        CNNClassifier(**{**FAST, "max_epochs": 2}),
        {"channels": [(4,), (8,)], "activation": ["relu", "tanh"]},
        cv=2, n_jobs=n_jobs,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.module_.features[0][0].out_channels == \
        grid.best_params_["channels"][0]


def test_grid_search_over_architectures_and_routed_params(small_digits):
    X, y = small_digits
    expected = {"convnet": ConvNet, "lenet5": LeNet5}
    seen = []

    def scorer(est, X, y):
        # Every fitted candidate built the architecture it was given (LeNet5
        # subclasses ConvNet: the exact class) and its optimizer got the eps.
        assert type(est.module_) is expected[est.architecture]
        assert est.net_.optimizer_.param_groups[0]["eps"] == est.optimizer__eps
        seen.append((est.architecture, est.optimizer__eps))
        return est.score(X, y)

    grid = GridSearchCV(
        CNNClassifier(max_epochs=2, random_state=0),
        {"architecture": ["convnet", "lenet5"], "optimizer__eps": [1e-8, 1e-3]},
        cv=2, scoring=scorer, error_score="raise",
    ).fit(X, y)
    assert sorted(set(seen)) == [("convnet", 1e-8), ("convnet", 1e-3),
                                 ("lenet5", 1e-8), ("lenet5", 1e-3)]
    assert len(seen) == 4 * 2  # 4 candidates, 2 folds
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    best = grid.best_estimator_
    assert type(best.module_) is expected[grid.best_params_["architecture"]]
    assert best.net_.optimizer_.param_groups[0]["eps"] == \
        grid.best_params_["optimizer__eps"]


def test_cross_validated_regressor_beats_the_mean():
    """The amplitude of a bump at a random place: learnable by convolutions."""
    rng = np.random.RandomState(0)
    n, length = 120, 32
    X = rng.normal(scale=0.3, size=(n, length)).astype(np.float32)
    y = rng.uniform(0.5, 3.0, n)
    start = rng.randint(0, length - 6, n)
    for i in range(n):
        X[i, start[i]:start[i] + 6] += y[i]
    cv = KFold(3, shuffle=True, random_state=0)
    reg = Conv1DRegressor("convnet", channels=(8, 16), max_epochs=12,
                          random_state=0)
    scores = cross_val_score(reg, X, y, cv=cv, error_score="raise")
    dummy = cross_val_score(DummyRegressor(), X, y, cv=cv)
    assert scores.shape == (3,)
    assert scores.min() > 0.7  # measured 0.81-0.93
    assert np.all(dummy < 0.01)


@pytest.mark.parametrize("Est", [CNNClassifier, CNNRegressor, Conv1DClassifier,
                                 Conv1DRegressor])
def test_pickle_and_joblib_round_trips(small_digits, tmp_path, Est):
    X, y = small_digits
    if Est in (Conv1DClassifier, Conv1DRegressor):
        X = X.reshape(len(X), -1)
    est = Est(**FAST).fit(X, y)
    expected = est.predict(X)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(loaded.predict(X), expected)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    np.testing.assert_array_equal(joblib.load(path).predict(X), expected)


def test_pandas_input_and_feature_names(small_digits):
    X, y = small_digits
    df = pd.DataFrame(X.reshape(len(X), -1),
                      columns=[f"px{i}" for i in range(64)])
    clf = CNNClassifier(**FAST).fit(df, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, df.columns)
    # A bare array after a DataFrame: scikit-learn's warning, same predictions.
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        from_array = clf.predict(df.to_numpy())
    np.testing.assert_array_equal(clf.predict(df), from_array)
    assert clf.input_shape_ == (1, 8, 8)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(df.rename(columns={"px0": "other"}))


def test_pipeline_with_function_transformer_to_images(small_digits):
    """A preprocessing step may hand the CNN (n, C, H, W) arrays."""
    X, y = small_digits
    to_img = FunctionTransformer(lambda Z: Z.reshape(-1, 1, 8, 8))
    pipe = Pipeline([("img", to_img), ("cnn", CNNClassifier(**FAST))])
    pipe.fit(X.reshape(len(X), -1), y)
    assert pipe.named_steps["cnn"].input_shape_ == (1, 8, 8)
