"""The loss parameter, label smoothing and multi-label targets."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor
from skcnn._losses import FocalLoss

SMALL = dict(architecture="convnet", channels=(4,), hidden_units=(8,), max_epochs=2, batch_size=8,
             random_state=0, device="cpu")


# -- focal loss ---------------------------------------------------------------
def test_focal_loss_values():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    target = torch.tensor([0, 2])
    # gamma=0 is cross-entropy, label smoothing included.
    for eps in (0.0, 0.2):
        torch.testing.assert_close(
            FocalLoss(gamma=0, label_smoothing=eps)(logits, target),
            F.cross_entropy(logits, target, reduction="none", label_smoothing=eps))
    # gamma=2 by hand: -(1 - p_t)^2 log p_t.
    p_t = torch.softmax(logits, 1)[[0, 1], [0, 2]]
    torch.testing.assert_close(FocalLoss(gamma=2)(logits, target),
                               -(1 - p_t) ** 2 * torch.log(p_t))
    # An easy sample loses far more of its loss than a hard one.
    ratio = FocalLoss(gamma=2)(logits, target) / F.cross_entropy(
        logits, target, reduction="none")
    assert ratio[0] < 0.1 < 0.4 < ratio[1]


def test_multilabel_focal_loss_values():
    logits = torch.tensor([[3.0, -1.0], [0.0, 2.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(
        FocalLoss(gamma=0, multilabel=True)(logits, target),
        F.binary_cross_entropy_with_logits(logits, target, reduction="none"))
    p = torch.sigmoid(logits)
    p_t = torch.where(target > 0, p, 1 - p)
    torch.testing.assert_close(FocalLoss(gamma=2, multilabel=True)(logits, target),
                               -(1 - p_t) ** 2 * torch.log(p_t))


# -- the loss parameter -------------------------------------------------------
def _classification(n=60, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(n, 16)).astype(np.float32)
    return X, (X[:, :8].mean(1) > X[:, 8:].mean(1)).astype(int)


@pytest.mark.parametrize("Estimator, loss, criterion", [
    (CNNClassifier, "cross_entropy", torch.nn.CrossEntropyLoss),
    (Conv1DClassifier, "focal", FocalLoss),
    (CNNRegressor, "mse", torch.nn.MSELoss),
    (Conv1DRegressor, "mae", torch.nn.L1Loss),
    (CNNRegressor, "huber", torch.nn.HuberLoss),
    (Conv1DRegressor, torch.nn.SmoothL1Loss, torch.nn.SmoothL1Loss),
])
def test_loss_builds_a_per_sample_criterion(Estimator, loss, criterion):
    X, y = _classification()
    if Estimator in (CNNRegressor, Conv1DRegressor):
        y = X[:, :4].sum(1)
    est = Estimator(loss=loss, **SMALL).fit(X, y)
    assert type(est.net_.criterion_) is criterion
    assert est.net_.criterion_.reduction == "none"
    assert np.isfinite(est.history_[:, "train_loss"]).all()


def test_losses_train_differently():
    X, y = _classification()
    outs = {loss: CNNClassifier(loss=loss, **SMALL).fit(X, y).predict_proba(X)
            for loss in ("cross_entropy", "focal")}
    assert np.abs(outs["cross_entropy"] - outs["focal"]).max() > 1e-4


def test_mae_resists_outliers():
    # 10% of the targets are wrong by +50: the MSE fit is pulled towards them,
    # the MAE fit (the median's loss) is not.
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(100, 16)).astype(np.float32)
    y_clean = X[:, :8].sum(1)
    y = y_clean.copy()
    y[::10] += 50
    err = {}
    for loss in ("mse", "mae"):
        est = Conv1DRegressor(loss=loss, **dict(SMALL, max_epochs=20, lr=1e-2))
        pred = est.fit(X, y).predict(X)
        err[loss] = np.median(np.abs(pred - y_clean)[y == y_clean])
    assert err["mae"] < 0.5 * err["mse"], err


def test_label_smoothing_caps_the_confidence():
    X, y = _classification(n=120)
    conf = {}
    for eps in (0.0, 0.3):
        est = CNNClassifier(label_smoothing=eps, **dict(SMALL, max_epochs=15, lr=1e-2))
        conf[eps] = est.fit(X, y).predict_proba(X).max(1).mean()
    # With eps=0.3 the targets are 0.85/0.15: the mean confidence stays
    # well below the unsmoothed fit's (0.72 against 0.86 when written).
    assert conf[0.3] < conf[0.0] - 0.08, conf


def test_criterion_arguments_are_routed():
    X, y = _classification()
    est = Conv1DClassifier(loss="focal", criterion__gamma=0.5, **SMALL).fit(X, y)
    assert est.net_.criterion_.gamma == 0.5


@pytest.mark.parametrize("params, error, match", [
    (dict(loss="hinge"), InvalidParameterError, "'loss' parameter"),
    (dict(loss=int), TypeError, "torch loss class"),
    (dict(label_smoothing=1.0), InvalidParameterError, "'label_smoothing'"),
    (dict(loss=torch.nn.MultiMarginLoss, label_smoothing=0.1), ValueError,
     "label_smoothing=0.1 applies to the built-in losses"),
])
def test_bad_loss(params, error, match):
    X, y = _classification()
    with pytest.raises(error, match=match):
        CNNClassifier(**params, **SMALL).fit(X, y)


class _ScalarOnlyLoss(torch.nn.Module):
    def forward(self, y_pred, y_true):
        return ((y_pred - y_true) ** 2).mean()


def test_loss_class_without_reduction():
    X = _classification()[0]
    y = X[:, :4].sum(1)
    est = CNNRegressor(loss=_ScalarOnlyLoss, **SMALL).fit(X, y)
    assert np.isfinite(est.predict(X)).all()
    with pytest.raises(ValueError, match="takes no 'reduction' argument"):
        CNNRegressor(loss=_ScalarOnlyLoss, **SMALL).fit(X, y, sample_weight=X[:, 0])


def test_loss_is_grid_searchable():
    X = _classification()[0]
    y = X[:, :4].sum(1)
    grid = GridSearchCV(Conv1DRegressor(**SMALL),
                        {"loss": ["mse", "mae", "huber", torch.nn.SmoothL1Loss]},
                        cv=2).fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_params_["loss"] in ("mse", "mae", "huber", torch.nn.SmoothL1Loss)
    Xc, yc = _classification()
    grid = GridSearchCV(CNNClassifier(**SMALL),
                        {"loss": ["cross_entropy", "focal"],
                         "label_smoothing": [0.0, 0.1]}, cv=2).fit(Xc, yc)
    assert len(grid.cv_results_["params"]) == 4


# -- multi-label --------------------------------------------------------------
def _multilabel(n=160, seed=0, dtype=int):
    """Three labels, each whether one quadrant of an 8x8 image is bright."""
    rng = np.random.RandomState(seed)
    X = rng.uniform(size=(n, 8, 8)).astype(np.float32)
    Y = rng.randint(0, 2, size=(n, 3))
    X[:, :4, :4] += 0.8 * Y[:, [0]][:, :, None]
    X[:, 4:, 4:] += 0.8 * Y[:, [1]][:, :, None]
    X[:, :4, 4:] += 0.8 * Y[:, [2]][:, :, None]
    return X, Y.astype(dtype)


@pytest.mark.parametrize("dtype", [int, bool])
def test_multilabel_learns_an_indicator_matrix(dtype):
    X, Y = _multilabel(dtype=dtype)
    X_test, Y_test = _multilabel(seed=1, dtype=dtype)
    est = CNNClassifier(**dict(SMALL, max_epochs=10, lr=1e-2)).fit(X, Y)
    pred = est.predict(X_test)
    proba = est.predict_proba(X_test)
    assert pred.shape == Y_test.shape and pred.dtype == Y_test.dtype
    assert proba.shape == (len(X_test), 3)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(1), 1)  # independent labels, not a softmax
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(dtype))
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X_test)), proba)
    assert np.mean(pred == Y_test) > 0.9  # per-label accuracy
    assert est.score(X_test, Y_test) > 0.7  # subset accuracy
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])


def test_multilabel_signals_with_focal_loss_weights_and_early_stopping():
    X, Y = _multilabel()
    X = X.reshape(len(X), -1)
    est = Conv1DClassifier(loss="focal", early_stopping=True, label_smoothing=0.05,
                           **dict(SMALL, max_epochs=4))
    est.fit(X, Y, sample_weight=np.linspace(0.5, 2, len(X)))
    assert est.predict(X[:5]).shape == (5, 3)
    acc = est.history_[:, "valid_acc"]
    assert len(acc) == 4 and all(0 <= a <= 1 for a in acc)


def test_multilabel_refusals():
    X, Y = _multilabel()
    with pytest.raises(ValueError, match="binary indicator matrix"):
        CNNClassifier(**SMALL).fit(X, np.c_[Y[:, 0], 2 * Y[:, 1]])  # multiclass-multioutput
    with pytest.raises(ValueError, match="class_weight is not supported with multi-label"):
        CNNClassifier(class_weight="balanced", **SMALL).fit(X, Y)
