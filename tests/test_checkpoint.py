"""checkpoint_dir: a checkpoint every epoch, resuming, and Ctrl-C."""

import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skcnn import CNNClassifier, Conv1DRegressor
from skcnn.exceptions import FitInterruptedWarning

ROOT = Path(__file__).resolve().parents[1]

# Settings whose state a resumed fit must restore: dropout and augmentation
# (torch's RNG), shuffling (the generator), the one-cycle and plateau
# schedules, Adam's moments, early stopping's counters and best weights.
CASES = {
    "image_onecycle_early_stopping": (
        "CNNClassifier",
        "rng.rand(48, 8, 8).astype(np.float32)",
        "(X.mean(axis=(1, 2)) > 0.5).astype(int)",
        dict(channels=(4,), hidden_units=(8,), dropout=0.3, batch_size=16,
             max_epochs=5, early_stopping=True, patience=50, lr=1e-2,
             random_state=0, device="cpu"),
    ),
    "signal_plateau_augment": (
        "Conv1DRegressor",
        "rng.randn(40, 24).astype(np.float32)",
        "X[:, :6].sum(axis=1)",
        dict(channels=(4,), hidden_units=(8,), dropout=0.2, batch_size=8,
             max_epochs=5, lr_schedule="plateau", augment="jitter",
             random_state=0, device="cpu"),
    ),
}

KILL_AFTER = 2  # epochs completed before the SIGKILL

SCRIPT = """
import os, signal, sys
import numpy as np
import torch
from skorch.callbacks import Callback
import skcnn

torch.set_num_threads(1)


class KillDuringEpoch(Callback):
    # SIGKILL in the middle of the epoch after {kill_after}: no cleanup runs.
    def on_batch_end(self, net, training=None, **kwargs):
        if training and len(net.history) == {kill_after} + 1 and len(
                net.history[-1]["batches"]) == 2:
            os.kill(os.getpid(), signal.SIGKILL)


rng = np.random.RandomState(0)
X = {X}
y = {y}
est = skcnn.{cls}(**{kw!r}, checkpoint_dir=sys.argv[1],
                  callbacks=[KillDuringEpoch()])
est.fit(X, y)
print("not killed")
"""


def _data(case):
    _, X, y, _ = CASES[case]
    rng = np.random.RandomState(0)
    X = eval(X, {"rng": rng, "np": np})  # the script's own expressions
    return X, eval(y, {"X": X, "np": np})


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fit_killed_and_resumed_ends_with_the_uninterrupted_weights(
        case, tmp_path, one_thread):
    cls_name, X_expr, y_expr, kw = CASES[case]
    script = tmp_path / "killed_fit.py"
    script.write_text(textwrap.dedent(SCRIPT).format(
        kill_after=KILL_AFTER, X=X_expr, y=y_expr, cls=cls_name, kw=kw))
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(script), str(ckpt)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    saved = torch.load(ckpt / "checkpoint.pt", weights_only=True)
    assert saved["epochs"] == KILL_AFTER
    assert [p.name for p in ckpt.iterdir()] == ["checkpoint.pt"]  # no temp file

    X, y = _data(case)
    cls = {"CNNClassifier": CNNClassifier, "Conv1DRegressor": Conv1DRegressor}[cls_name]
    resumed = cls(**kw, checkpoint_dir=ckpt).fit(X, y)
    straight = cls(**kw).fit(X, y)

    assert len(resumed.history_) == kw["max_epochs"]
    assert resumed.history_[:, "epoch"] == list(range(1, kw["max_epochs"] + 1))
    np.testing.assert_array_equal(resumed.history_[:, "train_loss"],
                                  straight.history_[:, "train_loss"])
    got, want = resumed.module_.state_dict(), straight.module_.state_dict()
    assert got.keys() == want.keys()
    for name in want:
        assert torch.equal(got[name], want[name]), name
    np.testing.assert_array_equal(resumed.predict(X), straight.predict(X))
    # The checkpoint now holds the finished fit: fitting again trains nothing.
    again = cls(**kw, checkpoint_dir=ckpt).fit(X, y)
    assert len(again.history_) == kw["max_epochs"]
    np.testing.assert_array_equal(again.predict(X), straight.predict(X))


def _digits(small_digits):
    X, y = small_digits
    return X[:80], y[:80]


FAST = dict(architecture="convnet", channels=(4,), hidden_units=(), batch_size=32, random_state=0,
            device="cpu")


def test_checkpoint_of_other_data_or_parameters_is_refused(small_digits, tmp_path):
    X, y = _digits(small_digits)
    CNNClassifier(**FAST, max_epochs=1, checkpoint_dir=tmp_path).fit(X, y)
    with pytest.raises(ValueError, match=r"another fit .*lr=0\.001 \(now 0\.01\)"):
        CNNClassifier(**FAST, max_epochs=1, lr=1e-2, checkpoint_dir=tmp_path).fit(X, y)
    X2 = X.copy()
    X2[0, 0, 0] += 0.5
    with pytest.raises(ValueError, match="80 samples .* other values.*Remove"):
        CNNClassifier(**FAST, max_epochs=1, checkpoint_dir=tmp_path).fit(X2, y)
    assert X2[0, 0, 0] == X[0, 0, 0] + 0.5  # the caller's data untouched


def test_early_stopped_checkpoint_resumes_as_finished(tmp_path):
    # A fit that early stopping ended is not continued when resumed.
    rng = np.random.RandomState(0)
    X = rng.rand(40, 6, 6).astype(np.float32)
    y = rng.randint(0, 2, 40)  # noise: the validation loss stops improving
    kw = dict(FAST, max_epochs=30, early_stopping=True, patience=2, lr=5e-2,
              lr_schedule=None)
    first = CNNClassifier(**kw, checkpoint_dir=tmp_path).fit(X, y)
    n = len(first.history_)
    assert n < 30
    again = CNNClassifier(**kw, checkpoint_dir=tmp_path).fit(X, y)
    assert len(again.history_) == n
    np.testing.assert_array_equal(again.predict_proba(X), first.predict_proba(X))


def test_checkpoint_write_is_atomic(small_digits, tmp_path, monkeypatch):
    X, y = _digits(small_digits)
    CNNClassifier(**FAST, max_epochs=1, checkpoint_dir=tmp_path).fit(X, y)
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        CNNClassifier(**FAST, max_epochs=2, checkpoint_dir=tmp_path / "other").fit(X, y)
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert list((tmp_path / "other").iterdir()) == []  # the temp file removed


class _CtrlCAtEpoch(Callback):
    """Send this process a SIGINT (a Ctrl-C) in the middle of an epoch, or
    while the callbacks end it (where early stopping stops training)."""

    def __init__(self, epoch, hook):
        self.epoch = epoch
        self.hook = hook

    def on_batch_end(self, net, training=None, **kwargs):
        if self.hook == "batch" and training and len(net.history) == self.epoch:
            os.kill(os.getpid(), signal.SIGINT)

    def on_epoch_end(self, net, **kwargs):
        if self.hook == "epoch_end" and len(net.history) == self.epoch:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler for the test (a Ray or Dask test run
    earlier in the same worker may have left its handler installed)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("hook", ["batch", "epoch_end"])
def test_ctrl_c_ends_fit_with_a_usable_estimator_and_a_warning(
        small_digits, tmp_path, hook, python_sigint_handler):
    X, y = _digits(small_digits)
    est = CNNClassifier(**FAST, max_epochs=5, checkpoint_dir=tmp_path,
                        callbacks=[_CtrlCAtEpoch(3, hook)])
    with pytest.warns(FitInterruptedWarning,
                      match=r"interrupted \(KeyboardInterrupt\) during epoch 3 of 5, "
                            r"after 2 complete.*resume after epoch 2"):
        est.fit(X, y)
    assert est.predict(X).shape == (80,)
    assert est.classes_.tolist() == list(range(10))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epochs"] == 2
    # Python's own handler is back: a later Ctrl-C raises KeyboardInterrupt.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_early_stopping_is_not_reported_as_an_interruption():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 6, 6).astype(np.float32)
    y = rng.randint(0, 2, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitInterruptedWarning)
        est = CNNClassifier(**FAST, max_epochs=30, early_stopping=True, patience=2,
                            lr=5e-2, lr_schedule=None).fit(X, y)
    assert len(est.history_) < 30


def test_warm_start_continues_in_memory_and_overwrites_the_checkpoint(
        small_digits, tmp_path):
    X, y = _digits(small_digits)
    est = CNNClassifier(**FAST, max_epochs=2, warm_start=True,
                        checkpoint_dir=tmp_path).fit(X, y)
    est.fit(X, y)  # continues the network: 2 more epochs, not a resume
    assert est.history_[:, "epoch"] == [1, 2, 3, 4]
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["epochs"] == 2  # the epochs of the latest fit


def test_checkpoint_dir_must_be_a_path():
    with pytest.raises(ValueError, match="checkpoint_dir"):
        CNNClassifier(checkpoint_dir=3).fit(np.zeros((4, 4, 4)), [0, 1, 0, 1])
