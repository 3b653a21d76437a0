"""No silent failure: diverged losses stop fit, the running loss is shown,
global torch settings come back."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, ProgressBar

import skcnn._guards as guards
from skcnn import CNNRegressor
from skcnn._guards import fit_settings
from skcnn.exceptions import NonFiniteLossError

FAST = dict(architecture="convnet", channels=(4,), hidden_units=(), batch_size=16, random_state=0,
            device="cpu")


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 6, 6).astype(np.float32)
    return X, X.sum(axis=(1, 2))


def test_diverging_fit_stops_naming_the_epoch_and_a_lower_lr(data):
    X, y = data
    est = CNNRegressor(**FAST, optimizer="sgd", lr=10.0, lr_schedule=None,
                       max_epochs=5)
    with pytest.raises(NonFiniteLossError,
                       match=r"train loss became inf at epoch 3 \(first at batch 2 "
                             r"of 3\).*lr=10 is probably too high.*try a lower one "
                             r"\(lr=1\).*callbacks__finite_loss=None"):
        est.fit(X, y)
    # Catchable as the two built-in types the message's situation fits.
    assert issubclass(NonFiniteLossError, FloatingPointError)
    assert issubclass(NonFiniteLossError, ValueError)
    assert not hasattr(est, "net_")  # no fitted estimator that predicts NaN


def test_finite_loss_guard_can_be_turned_off(data):
    X, y = data
    est = CNNRegressor(**FAST, optimizer="sgd", lr=10.0, lr_schedule=None,
                       max_epochs=5, callbacks__finite_loss=None).fit(X, y)
    losses = est.history_[:, "train_loss"]
    assert len(losses) == 5 and not np.isfinite(losses[-1])


def test_diverged_epoch_is_not_checkpointed(data, tmp_path):
    X, y = data
    with pytest.raises(NonFiniteLossError, match="epoch 3"):
        CNNRegressor(**FAST, optimizer="sgd", lr=10.0, lr_schedule=None,
                     max_epochs=5, checkpoint_dir=tmp_path).fit(X, y)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["epochs"] == 2  # the last finite epoch


class _RecordRunningLoss(Callback):
    def on_train_begin(self, net, **kwargs):
        self.seen_ = []

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            self.seen_.append(net.history[-1, "batches", -1].get("train_loss"))


def test_user_callbacks_see_the_running_loss(data):
    X, y = data
    cb = _RecordRunningLoss()
    est = CNNRegressor(**FAST, max_epochs=2, callbacks=[cb]).fit(X, y)
    recorded = [b["train_loss"] for epoch in est.history_ for b in epoch["batches"]]
    assert len(cb.seen_) == 6
    assert cb.seen_ == recorded  # each batch's loss, as the batch ended


def test_progress_bar_shows_the_running_loss(data, monkeypatch):
    X, y = data
    shown = []
    original = ProgressBar._get_postfix_dict

    def spy(self, net):
        postfix = original(self, net)
        shown.append(postfix)
        return postfix

    monkeypatch.setattr(ProgressBar, "_get_postfix_dict", spy)
    est = CNNRegressor(**FAST, max_epochs=2, verbose=1).fit(X, y)
    assert len(shown) == 6
    recorded = [b["train_loss"] for epoch in est.history_ for b in epoch["batches"]]
    assert [p.get("train_loss") for p in shown] == recorded


def test_default_fit_still_records_every_batch_loss(data):
    X, y = data
    est = CNNRegressor(**FAST, max_epochs=2).fit(X, y)
    for epoch in est.history_:
        losses = [b["train_loss"] for b in epoch["batches"]]
        assert len(losses) == 3 and all(np.isfinite(losses))
        sizes = [b["train_batch_size"] for b in epoch["batches"]]
        assert epoch["train_loss"] == pytest.approx(np.average(losses, weights=sizes))


@pytest.mark.parametrize("before", [False, True])
def test_fit_settings_restore_cudnn_benchmark(before, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", before)
    with fit_settings("cuda:0"):
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is before
    with pytest.raises(RuntimeError), fit_settings("cuda"):
        raise RuntimeError
    assert torch.backends.cudnn.benchmark is before
    with fit_settings("cpu"):
        assert torch.backends.cudnn.benchmark is before


class _RecordBenchmarkFlag(Callback):
    def on_epoch_begin(self, net, **kwargs):
        self.flag_ = torch.backends.cudnn.benchmark


@pytest.mark.parametrize("diverge", [False, True])
def test_fit_restores_global_torch_settings(data, monkeypatch, diverge):
    # As on CUDA: fit switches cudnn.benchmark on while training only, and
    # back off however fit ends.
    X, y = data
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(guards, "_uses_cudnn", lambda device: True)
    cb = _RecordBenchmarkFlag()
    lr = dict(optimizer="sgd", lr=10.0, lr_schedule=None) if diverge else {}
    est = CNNRegressor(**FAST, max_epochs=4, callbacks=[cb], **lr)
    if diverge:
        with pytest.raises(NonFiniteLossError):
            est.fit(X, y)
    else:
        est.fit(X, y)
    assert cb.flag_ is True
    assert torch.backends.cudnn.benchmark is False
