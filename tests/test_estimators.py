"""Behaviour a user relies on: labels, probabilities, targets, training knobs."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor
from skcnn._data import ArrayDataset

from .conftest import FAST


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog", "eel"]), np.array([3, 7, 11]), np.array([True, False])],
    ids=["str", "int", "bool"],
)
def test_predict_returns_the_users_labels(small_digits, labels):
    X, y = small_digits
    y_user = labels[y % len(labels)]
    clf = CNNClassifier(**FAST).fit(X, y_user)
    assert list(clf.classes_) == sorted(set(labels))
    pred = clf.predict(X[:20])
    assert pred.dtype == y_user.dtype
    assert set(pred) <= set(labels)
    proba = clf.predict_proba(X[:20])
    assert proba.shape == (20, len(labels))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(pred, clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[:20])), proba,
                               rtol=1e-10)


def test_default_classifier_learns_digits(digits):
    """CI-sized version of the 0.985 target of the digits example."""
    X, y = digits
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                          random_state=0)
    clf = CNNClassifier(random_state=0, max_epochs=12).fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= 0.975


def test_same_seed_gives_identical_predictions_and_leaves_global_rng(small_digits):
    X, y = small_digits
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = CNNClassifier(**FAST).fit(X, y).predict_proba(X)
    after = torch.rand(1)
    b = CNNClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert before == after  # fitting did not consume the caller's torch RNG
    c = CNNClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_input_layouts_agree(small_digits):
    """(n, H, W), (n, 1, H, W), flat (n, 64) and uint8 are the same images."""
    X, y = small_digits
    ref = CNNClassifier(**FAST).fit(X, y).predict_proba(X)
    for Xv in (X[:, None], X.reshape(len(X), -1)):
        np.testing.assert_allclose(
            CNNClassifier(**FAST).fit(Xv, y).predict_proba(Xv), ref, rtol=1e-5,
            atol=1e-6)
    X8 = np.round(X * 255).astype(np.uint8)
    clf = CNNClassifier(**FAST).fit(X8, y)
    np.testing.assert_allclose(clf.predict_proba(X8),
                               clf.predict_proba(X8.astype(np.float32) / 255),
                               rtol=1e-6)
    assert clf.input_shape_ == (1, 8, 8)
    assert clf.n_features_in_ == 64


def test_flat_input_uses_input_shape():
    rng = np.random.RandomState(0)
    X = rng.rand(30, 2 * 4 * 5)
    y = rng.randint(0, 2, 30)
    clf = CNNClassifier(input_shape=(2, 4, 5), **FAST).fit(X, y)
    assert clf.input_shape_ == (2, 4, 5)
    # A fitted model takes either layout of the same samples.
    np.testing.assert_allclose(clf.predict_proba(X),
                               clf.predict_proba(X.reshape(30, 2, 4, 5)))
    assert CNNClassifier(**FAST).fit(X[:, :36], y).input_shape_ == (1, 6, 6)
    assert CNNClassifier(**FAST).fit(X[:, :7], y).input_shape_ == (1, 1, 7)


def test_class_weight_shifts_predictions(small_digits):
    X, y = small_digits
    y2 = (y == 0).astype(int)  # ~10% positives
    plain = CNNClassifier(**FAST).fit(X, y2)
    heavy = CNNClassifier(class_weight={0: 1.0, 1: 50.0}, **FAST).fit(X, y2)
    assert heavy.predict(X).mean() > plain.predict(X).mean()
    # 'balanced' weighs each sample by n / (n_classes * count of its class):
    # the same fit as passing those weights as sample_weight
    balanced = CNNClassifier(class_weight="balanced", **FAST).fit(X, y2)
    by_hand = CNNClassifier(**FAST).fit(
        X, y2, sample_weight=(len(y2) / (2 * np.bincount(y2)))[y2])
    np.testing.assert_allclose(balanced.predict_proba(X), by_hand.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(balanced.predict_proba(X), plain.predict_proba(X), atol=1e-3)


def test_regressor_large_scale_targets_and_shapes():
    rng = np.random.RandomState(0)
    X = rng.rand(200, 1, 8, 8).astype(np.float32)
    y = 1e5 * X[:, 0, :4].mean(axis=(1, 2)) + 3e5
    reg = CNNRegressor(random_state=0, max_epochs=40, lr=3e-3).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (200,) and pred.dtype == np.float64
    assert reg.score(X, y) > 0.8
    assert abs(pred.mean() - y.mean()) < 0.05 * y.std() + 1.0
    Y = np.column_stack([y, -2 * y])
    multi = CNNRegressor(random_state=0, max_epochs=3).fit(X, Y)
    assert multi.predict(X[:5]).shape == (5, 2)
    np.testing.assert_allclose(multi.y_mean_, Y.mean(axis=0), rtol=1e-6)


def test_conv1d_estimators_on_signals(signals):
    X, y = signals
    clf = Conv1DClassifier(random_state=0, max_epochs=15).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert clf.input_shape_ == (1, 40)
    Xc = np.stack([X, -X], axis=1)  # two channels
    assert Conv1DClassifier(**FAST).fit(Xc, y).input_shape_ == (2, 40)
    reg = Conv1DRegressor(**FAST).fit(pd.DataFrame(X), y * 100.0)
    assert reg.predict(pd.DataFrame(X)).shape == (len(X),)


@pytest.mark.parametrize("optimizer,expected", [
    ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
    ("sgd", torch.optim.SGD), ("rmsprop", torch.optim.RMSprop),
    (torch.optim.Adagrad, torch.optim.Adagrad),
])
def test_optimizers(small_digits, optimizer, expected):
    X, y = small_digits
    clf = CNNClassifier(optimizer=optimizer, weight_decay=1e-4, lr_schedule=None,
                        **FAST).fit(X, y)
    opt = clf.net_.optimizer_
    assert type(opt) is expected
    assert opt.param_groups[0]["weight_decay"] == 1e-4
    if optimizer == "sgd":
        assert opt.param_groups[0]["momentum"] == 0.9


def test_early_stopping_restores_best_and_holds_out_data(small_digits):
    X, y = small_digits
    clf = CNNClassifier(early_stopping=True, validation_fraction=0.2, patience=2,
                        max_epochs=40, lr=3e-2, lr_schedule=None, channels=(8,),
                        random_state=0).fit(X, y)
    hist = clf.history_
    valid = hist[:, "valid_loss"]
    assert len(hist) < 40  # stopped early
    assert "valid_acc" in hist[-1]
    # 20% held out: 240 train samples -> 4 batches of 64 (last one 48).
    assert hist[0, "train_batch_count"] == 4
    best = int(np.argmin(valid))
    assert len(hist) - 1 - best == 2  # patience epochs after the best one
    # The weights of the best epoch are restored: on the held-out samples the
    # fitted model scores the best validation loss, not the last one.
    assert valid[-1] > valid[best] + 0.02
    _, held_out = clf.net_.train_split(
        ArrayDataset(torch.as_tensor(X[:, None]), torch.as_tensor(y)))
    rows = held_out.indices.numpy()
    assert len(rows) == 60
    loss = log_loss(y[rows], clf.predict_proba(X[rows]), labels=clf.classes_)
    assert loss == pytest.approx(valid[best], rel=1e-4)
    no_es = CNNClassifier(**FAST).fit(X, y)
    assert "valid_loss" not in no_es.history_[-1]
    assert no_es.history_[0, "train_batch_count"] == 5  # all 300 samples


def test_history_records_each_epoch(small_digits):
    X, y = small_digits
    clf = CNNClassifier(**FAST).fit(X, y)
    assert len(clf.history_) == 3
    losses = clf.history_[:, "train_loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert all(d > 0 for d in clf.history_[:, "dur"])


def test_warm_start_continues_training(small_digits):
    X, y = small_digits
    clf = CNNClassifier(warm_start=True, **FAST).fit(X, y)
    weights = clf.module_.head[-1].weight.detach().clone()
    clf.fit(X, y)
    assert len(clf.history_) == 6  # 3 more epochs on the same history
    assert not torch.equal(weights, clf.module_.head[-1].weight)
    cold = CNNClassifier(**FAST).fit(X, y)
    cold.fit(X, y)
    assert len(cold.history_) == 3


def test_verbose_prints_a_log(small_digits, capsys):
    X, y = small_digits
    CNNClassifier(**FAST).fit(X, y)
    assert capsys.readouterr().out == ""
    CNNClassifier(verbose=1, **FAST).fit(X, y)
    out = capsys.readouterr().out
    assert "train_loss" in out and "epoch" in out


class TinyNet(torch.nn.Module):
    """A user's module: lazy layers, the data fills n_classes."""

    def __init__(self, n_classes, width=4):
        super().__init__()
        self.conv = torch.nn.LazyConv2d(width, 3, padding=1)
        self.head = torch.nn.LazyLinear(n_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def test_custom_module_class_with_lazy_layers_and_routing(small_digits):
    X, y = small_digits
    clf = CNNClassifier(TinyNet, module__width=6, optimizer__betas=(0.8, 0.99),
                        lr_schedule=None, lr=1e-2, **{k: v for k, v in FAST.items()
                           if k not in ("architecture", "channels", "hidden_units")}).fit(X, y)
    assert clf.module_.conv.out_channels == 6
    assert clf.module_.head.out_features == 10
    assert clf.net_.optimizer_.param_groups[0]["betas"] == (0.8, 0.99)
    assert clf.get_params()["module__width"] == 6
    assert clf.score(X, y) > 0.5


@pytest.mark.parametrize("knob,value,check", [
    ("channels", (4, 6), lambda m: m.features[0][0].out_channels == 4),
    ("kernel_size", 5, lambda m: m.features[0][0].kernel_size == (5, 5)),
    ("pooling", "avg", lambda m: isinstance(m.features[1], torch.nn.AvgPool2d)),
    ("batch_norm", False, lambda m: not any(
        isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())),
    ("dropout", 0.5, lambda m: any(
        isinstance(x, torch.nn.Dropout) and x.p == 0.5 for x in m.modules())),
    ("hidden_units", (16, 8), lambda m: [x.out_features for x in m.head
                                         if isinstance(x, torch.nn.Linear)]
     == [16, 8, 10]),
    ("activation", "gelu", lambda m: any(
        isinstance(x, torch.nn.GELU) for x in m.modules())),
    ("activation", "swish", lambda m: any(
        isinstance(x, torch.nn.SiLU) for x in m.modules())),
])
def test_knobs_reach_the_network(small_digits, knob, value, check):
    X, y = small_digits
    clf = CNNClassifier(max_epochs=1, random_state=0, **{knob: value}).fit(X, y)
    assert check(clf.module_)


@pytest.mark.parametrize("cls, X_of", [
    (CNNClassifier, lambda X: X),
    (Conv1DClassifier, lambda X: X.reshape(len(X), 1, -1)),
])
def test_separable_convolutions_through_module_routing(small_digits, cls, X_of):
    X, y = small_digits
    X = X_of(X)
    full = cls("convnet", max_epochs=1, random_state=0).fit(X, y)
    sep = cls("convnet", max_epochs=1, random_state=0,
              module__separable=True).fit(X, y)
    convs = [m for m in sep.module_.features.modules()
             if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d))]
    # The first convolution stays full; the second is depthwise + pointwise.
    assert [c.groups for c in convs] == [1, 32, 1]
    assert convs[2].kernel_size in ((1,), (1, 1))

    def n_weights(est):
        return sum(p.numel() for p in est.module_.features.parameters())

    assert n_weights(sep) < 0.5 * n_weights(full)
    assert sep.predict(X).shape == (len(X),)


def test_dilation_through_module_routing(small_digits):
    X, y = small_digits
    X = X.reshape(len(X), 1, -1)  # 64-step series
    plain = Conv1DClassifier("convnet", max_epochs=1, random_state=0).fit(X, y)
    dilated = Conv1DClassifier("convnet", max_epochs=1, random_state=0,
                               module__dilation=(1, 4)).fit(X, y)
    convs = [m for m in dilated.module_.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.dilation for c in convs] == [(1,), (4,)]
    # The same weights, spread over a wider receptive field.
    assert ([p.shape for p in dilated.module_.parameters()]
            == [p.shape for p in plain.module_.parameters()])
    assert dilated.predict_proba(X).shape == (len(X), 10)
    with pytest.raises(ValueError, match=r"dilation must be an int or one int per "
                                         r"stage \(2 stages\); got \(1, 2, 4\)"):
        Conv1DClassifier("convnet", max_epochs=1, module__dilation=(1, 2, 4)).fit(X, y)


def test_set_params_rebuilds_the_network(small_digits):
    X, y = small_digits
    clf = CNNClassifier(**FAST).fit(X, y)
    first = clf.module_
    clf.set_params(channels=(5,), module__dropout=0.0)
    clf.fit(X, y)
    assert clf.module_ is not first
    assert clf.module_.features[0][0].out_channels == 5
    assert not any(isinstance(m, torch.nn.Dropout) and m.p > 0
                   for m in clf.module_.modules())


def test_callers_arrays_are_not_modified(small_digits):
    X, y = small_digits
    X32 = X.astype(np.float32)
    X8 = (X * 255).astype(np.uint8)
    copies = [X32.copy(), X8.copy(), y.copy()]
    for Xv in (X32, X8):
        clf = CNNClassifier(**FAST).fit(Xv, y)
        clf.predict_proba(Xv)
    np.testing.assert_array_equal(X32, copies[0])
    np.testing.assert_array_equal(X8, copies[1])
    np.testing.assert_array_equal(y, copies[2])


def test_precision_bf16_trains_on_cpu(small_digits):
    X, y = small_digits
    clf = CNNClassifier(precision="bf16", **FAST).fit(X, y)
    proba = clf.predict_proba(X[:10])
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    # bfloat16 changes the computation of training and of prediction (8 bits
    # of mantissa), without changing what is learned much.
    clf = CNNClassifier(precision="bf16", **{**FAST, "lr": 1e-2}).fit(X, y)
    ref = CNNClassifier(**{**FAST, "lr": 1e-2}).fit(X, y)
    assert not np.array_equal(clf.history_[:, "train_loss"],
                              ref.history_[:, "train_loss"])
    np.testing.assert_allclose(clf.history_[:, "train_loss"],
                               ref.history_[:, "train_loss"], rtol=0.05)
    expected = ref.predict_proba(X)
    ref.net_.precision = "bf16"
    got = ref.predict_proba(X)
    assert np.abs(got - expected).max() > 1e-4
    np.testing.assert_allclose(got, expected, atol=0.05)
    assert np.mean(got.argmax(1) == expected.argmax(1)) > 0.95


@pytest.mark.parametrize(
    "cls", [CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor])
def test_every_estimator_takes_every_shared_parameter(cls):
    # Each estimator spells out BaseCNN's parameters in its own __init__ (as
    # scikit-learn requires for get_params); one left out would be silently
    # rejected as an unexpected keyword argument.
    import inspect

    from skcnn._base import BaseCNN

    shared = set(inspect.signature(BaseCNN.__init__).parameters) - {"self", "kwargs"}
    own = set(inspect.signature(cls.__init__).parameters)
    assert shared - own == set()
    params = cls().get_params()
    for name in shared:
        assert cls(**{name: params[name]}).get_params()[name] is params[name]
