"""skcnn._net._Net: the paths of the training loop the estimators' tests miss.

Written for the mutants of ``_net.py`` that survived the sampled mutation run
of 2026-12-02 (tests/MUTATION.md): weighted validation batches, the batches
of a data-parallel rank, float16 training with its gradient scaler, and
mixed precision with masked (unequal-length) series.
"""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss

from skcnn import CNNClassifier, Conv1DClassifier
from skcnn._data import ArrayDataset, BatchIterator
from skcnn._distributed import DistInfo

from .conftest import FAST


@pytest.fixture(autouse=True)
def _one_thread():
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def test_weighted_validation_batches_give_weighted_loss_and_accuracy(small_digits):
    X, y = small_digits
    w = np.linspace(0.2, 3.0, len(y))
    # 60 held-out rows in 4 validation batches of 16.
    clf = CNNClassifier(early_stopping=True, validation_fraction=0.2, patience=10,
                        batch_size=16, **FAST).fit(X, y, sample_weight=w)
    hist = clf.history_
    best = int(np.argmin(hist[:, "valid_loss"]))
    _, held_out = clf.net_.train_split(
        ArrayDataset(torch.as_tensor(X[:, None]), torch.as_tensor(y)))
    rows = held_out.indices.numpy()
    proba = clf.predict_proba(X[rows])
    # The held-out loss is the weighted mean of the per-sample losses (the
    # weights normalised to mean 1 over the whole training set), ...
    wn = w / w.mean()
    losses = -np.log(proba[np.arange(len(rows)), np.searchsorted(clf.classes_, y[rows])])
    assert hist[best, "valid_loss"] == pytest.approx(np.mean(losses * wn[rows]), rel=1e-4)
    assert hist[best, "valid_loss"] != pytest.approx(log_loss(y[rows], proba, labels=clf.classes_),
                                                     rel=1e-3)
    # ... and the accuracy counts every held-out sample once.
    assert hist[best, "valid_acc"] == pytest.approx(
        accuracy_score(y[rows], clf.classes_[proba.argmax(1)]))


def test_a_data_parallel_rank_trains_on_its_shard_in_smaller_batches(small_digits):
    X, y = small_digits
    net = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, y).net_
    data = ArrayDataset(torch.as_tensor(X[:, None], dtype=torch.float32), torch.as_tensor(y))
    net.dist_info = DistInfo(rank=1, world_size=2)
    net.generator = torch.Generator().manual_seed(0)
    net.balanced_batches = False  # full batches and a remainder
    got = list(net.get_iterator(data, training=True))
    # 64 a global batch: 32 a rank's, over this rank's 150 of the 300 rows.
    assert [len(yb) for _, yb in got] == [32, 32, 32, 32, 22]
    reference = BatchIterator(data, 32, shuffle=True, generator=torch.Generator().manual_seed(0),
                              drop_singleton=True, shard=(1, 2))
    for (xb, yb), (xr, yr) in zip(got, reference, strict=True):
        assert torch.equal(xb, xr) and torch.equal(yb, yr)
    # Validation and prediction batches are neither sharded nor smaller.
    assert [len(yb) for _, yb in net.get_iterator(data, training=False)] == [64] * 4 + [44]


def test_fp16_trains_with_a_gradient_scaler_in_training_mode(small_digits):
    X, y = small_digits
    clf = CNNClassifier(precision="fp16", **FAST).fit(X, y)
    ref = CNNClassifier(**FAST).fit(X, y)
    scaler = clf.net_.scaler_
    assert isinstance(scaler, torch.amp.GradScaler) and ref.net_.scaler_ is None
    # The scaler stepped the optimizer once per batch (5 batches of 300
    # samples, 3 epochs), no step skipped for an overflow.
    assert scaler.state_dict()["_growth_tracker"] == 15
    # Training mode: the batch-norm layers learned the running statistics
    # of the data as in float32 training (not their initial 0 and 1).
    bn = clf.module_.features[0][1]
    bn_ref = ref.module_.features[0][1]
    assert isinstance(bn, torch.nn.BatchNorm2d)
    assert bn.num_batches_tracked.item() == 15
    np.testing.assert_allclose(bn.running_mean, bn_ref.running_mean, rtol=0.05, atol=1e-3)
    np.testing.assert_allclose(clf.history_[:, "train_loss"], ref.history_[:, "train_loss"],
                               rtol=0.05)
    # The network runs in float16 under autocast (not autocast's CPU default,
    # bfloat16).
    with torch.no_grad():
        out = clf.net_.infer(torch.as_tensor(X[:4, None], dtype=torch.float32))
    assert out.dtype == torch.float16


def test_mixed_precision_keeps_the_mask_of_unequal_length_series():
    rng = np.random.RandomState(0)
    lengths = rng.randint(10, 30, size=16)
    y = np.arange(16) % 2
    series = [rng.randn(m) + (1.5 if y[i] else -1.5) * (np.arange(m) < m // 2)
              for i, m in enumerate(lengths)]
    est = Conv1DClassifier("fcn", channels=(8, 8, 8), precision="bf16", max_epochs=10,
                           batch_size=8, random_state=0).fit(series, y)
    short, long_ = series[:3], rng.randn(400)
    alone = np.concatenate([est.predict_proba([s]) for s in short])
    padded = est.predict_proba(short + [long_])[:3]
    # bfloat16 rounding at most (8 bits of mantissa): padding with 370 zeros
    # that the mask does not hide moves the probabilities by 0.04 to 0.06.
    np.testing.assert_allclose(padded, alone, atol=5e-3)


def test_multilabel_validation_accuracy_is_the_subset_accuracy(small_digits):
    # valid_acc of a multi-label classifier counts a held-out sample as
    # correct when every one of its labels is (what score computes).
    X, y = small_digits
    Y = np.stack([y % 2, (y > 4), (y % 3 == 0)], axis=1).astype(int)
    clf = CNNClassifier(early_stopping=True, validation_fraction=0.2, patience=10,
                        **FAST).fit(X, Y)
    hist = clf.history_
    best = int(np.argmin(hist[:, "valid_loss"]))
    _, held_out = clf.net_.train_split(
        ArrayDataset(torch.as_tensor(X[:, None]), torch.as_tensor(Y, dtype=torch.float32)))
    rows = held_out.indices.numpy()
    subset = accuracy_score(Y[rows], clf.predict(X[rows]))
    per_label = np.mean(Y[rows] == clf.predict(X[rows]))
    assert hist[best, "valid_acc"] == pytest.approx(subset)
    assert subset != pytest.approx(per_label)


def test_every_batch_trains_with_every_submodule_in_training_mode(small_digits):
    # _set_training lists the submodules once an epoch; their flags are still
    # read at every batch, so one switched to eval mode (here by a callback,
    # before each batch) is back in training mode for the step, and the list
    # does not outlive the epoch (nothing pickles it with the net).
    from skorch.callbacks import Callback

    class EvalDropout(Callback):
        seen = []

        def on_batch_begin(self, net, batch=None, training=None, **kwargs):
            if training:
                for m in net.module_.modules():
                    if isinstance(m, torch.nn.Dropout):
                        m.eval()

        def on_batch_end(self, net, batch=None, training=None, **kwargs):
            if training:
                self.seen.append(all(m.training for m in net.module_.modules()))

    X, y = small_digits
    clf = CNNClassifier(**FAST, callbacks=[EvalDropout()]).fit(X, y)
    assert any(isinstance(m, torch.nn.Dropout) for m in clf.module_.modules())
    assert len(EvalDropout.seen) > 2 and all(EvalDropout.seen)
    assert clf.net_.__dict__.get("_submodules") is None
