"""``lr_schedule``: the rate (and momentum) each schedule gives every step.

Each test records what the optimizer held at every training batch and
compares it with the schedule the user guide describes, so a schedule that
is dropped, mis-parametrised or that overrides a routed optimizer option
fails here.
"""

import math

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skcnn import CNNClassifier, Conv1DClassifier

LR = 1e-2
N, BATCH = 48, 16  # 3 batches per epoch
EPOCHS = 5


class _Rates(Callback):
    """Record the first parameter group's lr and momentum at every batch."""

    def on_train_begin(self, net, **kwargs):
        self.lr, self.momentum = [], []

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        group = net.optimizer_.param_groups[0]
        self.lr.append(group["lr"])
        if "betas" in group:
            self.momentum.append(group["betas"][0])
        else:
            self.momentum.append(group.get("momentum"))


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:N].astype(np.float32), y[:N]


def fit(data, **params):
    rates = _Rates()
    params = {"channels": (4,), "hidden_units": (8,), "batch_size": BATCH,
              "max_epochs": EPOCHS, "lr": LR, "random_state": 0,
              "callbacks": [("rates", rates)], **params}
    est = CNNClassifier(**params).fit(*data)
    return est, np.array(rates.lr), np.array(rates.momentum, dtype=float)


def per_epoch(values, batches=N // BATCH):
    """The value of each epoch (checking it is constant within the epoch)."""
    values = values.reshape(-1, batches)
    np.testing.assert_array_equal(values, values[:, :1].repeat(batches, axis=1))
    return values[:, 0]


def test_none_keeps_the_rate_constant(data):
    _, lr, _ = fit(data, lr_schedule=None)
    assert len(lr) == EPOCHS * 3
    np.testing.assert_array_equal(lr, LR)


def test_cosine_anneals_from_lr_over_max_epochs(data):
    _, lr, _ = fit(data, lr_schedule="cosine")
    expected = [LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]
    np.testing.assert_allclose(per_epoch(lr), expected, rtol=1e-10)


def test_onecycle_warms_up_to_lr_then_anneals_every_batch(data):
    _, lr, momentum = fit(data, lr_schedule="onecycle", max_epochs=10)
    steps = 10 * 3
    assert len(lr) == steps
    # A warm-up from lr / 25 to the peak lr over the first 30% of the steps...
    assert lr[0] == pytest.approx(LR / 25)
    assert lr.max() == pytest.approx(LR)
    peak = int(np.argmax(lr))
    assert peak == round(0.3 * steps) - 1
    assert np.all(np.diff(lr[:peak + 1]) > 0)
    # ...then annealing, every batch, to lr / 25 / 1e4 at the last step.
    assert np.all(np.diff(lr[peak:]) < 0)
    assert lr[-1] == pytest.approx(LR / 25 / 1e4)
    # Adam's first beta moves against the rate, 0.95 -> 0.85 -> 0.95.
    assert momentum[0] == pytest.approx(0.95)
    assert momentum[peak] == pytest.approx(0.85)
    assert momentum[-1] == pytest.approx(0.95, abs=1e-6)


def scripted_loss(values):
    """A plateau monitor returning ``values[epoch]`` (routed to the callback)."""
    def monitor(net):
        return values[len(net.history) - 1]
    return monitor


@pytest.mark.parametrize("patience", [4, 6])
def test_plateau_multiplies_the_rate_by_0_3_after_patience_halved_epochs(
        data, patience):
    # The loss improves at epoch 1 and never after.
    losses = [1.0, 0.5] + [0.5] * 12
    _, lr, _ = fit(data, lr_schedule="plateau", patience=patience, max_epochs=12,
                   callbacks__lr_schedule__monitor=scripted_loss(losses))
    wait = patience // 2
    # Reduced at the end of the (wait + 1)-th epoch without improvement (2 + wait
    # + 1 epochs in), and again after every further wait + 1 stalled epochs.
    expected = [LR * 0.3 ** max(0, (e - 2) // (wait + 1)) for e in range(12)]
    np.testing.assert_allclose(per_epoch(lr), expected, rtol=1e-10)


def test_plateau_keeps_the_rate_while_the_loss_improves(data):
    losses = [1.0 - 0.1 * e for e in range(EPOCHS)]
    _, lr, _ = fit(data, lr_schedule="plateau", patience=2,
                   callbacks__lr_schedule__monitor=scripted_loss(losses))
    np.testing.assert_array_equal(lr, LR)


def test_plateau_monitors_the_validation_loss_with_early_stopping(data):
    est, _, _ = fit(data, lr_schedule="plateau")
    assert dict(est.net_.callbacks_)["lr_schedule"].monitor == "train_loss"
    est, _, _ = fit(data, lr_schedule="plateau", early_stopping=True)
    assert dict(est.net_.callbacks_)["lr_schedule"].monitor == "valid_loss"


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_a_warm_start_runs_the_whole_schedule_again(data, schedule):
    rates = _Rates()
    est = CNNClassifier(channels=(4,), hidden_units=(8,), batch_size=BATCH,
                        max_epochs=3, lr=LR, random_state=0, warm_start=True,
                        lr_schedule=schedule, callbacks=[("rates", rates)])
    est.fit(*data)
    first = list(rates.lr)
    est.fit(*data)
    assert len(est.history_) == 6
    np.testing.assert_allclose(rates.lr, first, rtol=1e-12)


ROUTED = [
    ("sgd", {"optimizer__momentum": 0.5}, 0.5),
    ("adam", {"optimizer__betas": (0.6, 0.99)}, 0.6),
    ("adamw", {"optimizer__betas": (0.6, 0.99)}, 0.6),
]


@pytest.mark.parametrize("schedule", [None, "plateau", "cosine", "onecycle"])
@pytest.mark.parametrize("optimizer, routed, value", ROUTED,
                         ids=[r[0] for r in ROUTED])
def test_a_routed_momentum_is_kept_under_every_schedule(data, schedule, optimizer,
                                                        routed, value):
    est, lr, momentum = fit(data, lr_schedule=schedule, optimizer=optimizer,
                            **routed)
    np.testing.assert_array_equal(momentum, value)
    group = est.net_.optimizer_.param_groups[0]
    if "optimizer__betas" in routed:
        assert tuple(group["betas"]) == routed["optimizer__betas"]
    else:
        assert group["momentum"] == value
    if schedule == "onecycle":  # the rate still follows the schedule
        assert lr.max() > 0.99 * LR and lr[0] == pytest.approx(LR / 25)


@pytest.mark.parametrize("optimizer, expected", [
    ("sgd", 0.9), ("rmsprop", 0.0), (torch.optim.SGD, 0.0),
])
@pytest.mark.parametrize("schedule", [None, "plateau", "cosine", "onecycle"])
def test_momentum_the_estimator_sets(data, optimizer, expected, schedule):
    _, _, momentum = fit(data, lr_schedule=schedule, optimizer=optimizer)
    if schedule == "onecycle" and expected:  # 'sgd': cycled 0.95 -> 0.85 -> 0.95
        assert momentum[0] == pytest.approx(0.95)
        assert 0.85 <= momentum.min() < 0.851
    else:  # left alone; no momentum added to an optimizer without
        np.testing.assert_array_equal(momentum, expected)


def test_signal_estimators_share_the_schedules():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(24, 16)).astype(np.float32)
    y = np.arange(24) % 2
    rates = _Rates()
    Conv1DClassifier("convnet", channels=(4,), batch_size=8, max_epochs=2, lr=LR,
                     lr_schedule=None, optimizer="sgd", optimizer__momentum=0.3,
                     random_state=0, callbacks=[("rates", rates)]).fit(X, y)
    np.testing.assert_array_equal(rates.lr, LR)
    np.testing.assert_array_equal(rates.momentum, 0.3)
