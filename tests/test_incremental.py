"""partial_fit: learning chunk by chunk (numpy.memmap, Dask arrays, streams)."""

import numpy as np
import pytest
import torch

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor

SMALL = dict(architecture="convnet", channels=(8,), hidden_units=(16,), random_state=0)
CLASSES = np.arange(10)


@pytest.fixture(scope="module")
def flat_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture
def digits_memmap(flat_digits, tmp_path):
    X, _ = flat_digits
    path = tmp_path / "digits.dat"
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    out[:] = X
    out.flush()
    del out
    return np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)


def _stream(est, X, y, passes=2, chunk=100, **kwargs):
    for _ in range(passes):
        for start in range(0, 1200, chunk):
            est.partial_fit(X[start:start + chunk], y[start:start + chunk], **kwargs)
    return est


def test_classifier_learns_from_memmap_chunks(flat_digits, digits_memmap):
    X, y = flat_digits
    before = np.array(digits_memmap[:5])
    clf = _stream(CNNClassifier(lr=1e-2, **SMALL), digits_memmap, y,
                  classes=CLASSES)
    assert clf.score(X[1200:], y[1200:]) > 0.75  # 0.84 when written
    assert len(clf.history_) == 24  # one epoch per call
    assert clf.history_[:, "train_batch_count"] == [2] * 24  # 100 in batches of <= 64
    np.testing.assert_array_equal(digits_memmap[:5], before)


def test_optimizer_state_and_weights_carry_over(flat_digits):
    X, y = flat_digits
    clf = CNNClassifier(**SMALL).partial_fit(X[:100], y[:100], classes=CLASSES)
    state = clf.net_.optimizer_.state_dict()["state"][0]
    assert float(state["step"]) == 2
    first = next(clf.module_.parameters()).detach().clone()
    clf.partial_fit(X[100:200], y[100:200])
    state = clf.net_.optimizer_.state_dict()["state"][0]
    assert float(state["step"]) == 4  # the same Adam, two more steps
    assert not torch.equal(first, next(clf.module_.parameters()))
    assert clf.net_.optimizer_.param_groups[0]["lr"] == clf.lr  # no schedule


def test_partial_fit_is_reproducible(flat_digits):
    X, y = flat_digits
    a = _stream(CNNClassifier(**SMALL), X, y, passes=1, classes=CLASSES)
    b = _stream(CNNClassifier(**SMALL), X, y, passes=1, classes=CLASSES)
    np.testing.assert_array_equal(a.predict_proba(X[1200:]), b.predict_proba(X[1200:]))


def test_classes_are_required_on_the_first_call_and_checked(flat_digits):
    X, y = flat_digits
    clf = CNNClassifier(**SMALL)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X[:50], y[:50])
    clf.partial_fit(X[:50], np.where(y[:50] < 5, 0, 1), classes=[0, 1])
    np.testing.assert_array_equal(clf.classes_, [0, 1])
    with pytest.raises(ValueError, match=r"labels \[2\] that are not in classes"):
        clf.partial_fit(X[:4], [0, 1, 2, 1])
    with pytest.raises(ValueError, match="differs from the classes of the previous"):
        clf.partial_fit(X[:4], [0, 1, 0, 1], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not supported by partial_fit"):
        CNNClassifier(class_weight="balanced").partial_fit(X[:4], [0, 1, 0, 1],
                                                          classes=[0, 1])


def test_a_chunk_may_miss_classes(flat_digits):
    X, y = flat_digits
    first = y < 3
    clf = CNNClassifier(**SMALL).partial_fit(X[first][:40], y[first][:40],
                                             classes=CLASSES)
    assert clf.predict_proba(X[:3]).shape == (3, 10)


def test_later_chunks_must_match_the_first(flat_digits):
    X, y = flat_digits
    clf = CNNClassifier(**SMALL).partial_fit(X[:50], y[:50], classes=CLASSES)
    with pytest.raises(ValueError, match="X has 32 features"):
        clf.partial_fit(X[:50, :32], y[:50])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.partial_fit(X[:50], y[:40])


def test_regressor_standardises_with_the_first_chunk(flat_digits, digits_memmap):
    X, _ = flat_digits
    target = X[:, :32].sum(axis=1) * 10 + 100
    reg = CNNRegressor(lr=1e-2, **SMALL)
    reg.partial_fit(digits_memmap[:100], target[:100])
    np.testing.assert_allclose(reg.y_mean_, [target[:100].mean()], rtol=1e-6)
    np.testing.assert_allclose(reg.y_scale_, [target[:100].std()], rtol=1e-6)
    _stream(reg, digits_memmap, target)
    np.testing.assert_allclose(reg.y_mean_, [target[:100].mean()], rtol=1e-6)
    assert reg.score(X[1200:], target[1200:]) > 0.5  # 0.71 when written
    with pytest.raises(ValueError, match="y has 2 output"):
        reg.partial_fit(X[:10], np.c_[target[:10], target[:10]])


def test_partial_fit_after_fit_continues_the_network(flat_digits):
    X, y = flat_digits
    clf = CNNClassifier(max_epochs=2, early_stopping=True, **SMALL).fit(X[:600],
                                                                      y[:600])
    weights = next(clf.module_.parameters()).detach().clone()
    clf.partial_fit(X[600:700], y[600:700])
    assert len(clf.history_) == 3
    assert "valid_loss" not in clf.history_[-1]  # no hold-out in partial_fit
    assert clf.net_.optimizer_.param_groups[0]["lr"] == clf.lr
    assert not torch.equal(weights, next(clf.module_.parameters()))


@pytest.mark.parametrize("Est", [Conv1DClassifier, Conv1DRegressor])
def test_1d_estimators_partial_fit(Est, signals):
    X, y = signals
    est = Est("convnet", channels=(4,), hidden_units=(8,), random_state=0)
    kwargs = {"classes": [0, 1]} if Est is Conv1DClassifier else {}
    est.partial_fit(X[:60], y[:60], **kwargs).partial_fit(X[60:], y[60:])
    assert len(est.history_) == 2 and est.predict(X[:5]).shape == (5,)
    assert est.input_shape_ == (1, 40)


def test_dask_ml_incremental_and_parallel_post_fit(flat_digits):
    da = pytest.importorskip("dask.array")
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X, y = flat_digits
    Xd = da.from_array(X[:1200], chunks=200)
    yd = da.from_array(y[:1200], chunks=200)
    inc = wrappers.Incremental(CNNClassifier(**SMALL), shuffle_blocks=False)
    inc.fit(Xd, yd, classes=CLASSES)
    est = inc.estimator_
    assert len(est.history_) == 6  # one pass over each of the 6 blocks
    # The same as a loop over the blocks.
    loop = CNNClassifier(**SMALL)
    for start in range(0, 1200, 200):
        loop.partial_fit(X[start:start + 200], y[start:start + 200], classes=CLASSES)
    np.testing.assert_array_equal(est.predict_proba(X[1200:]),
                                  loop.predict_proba(X[1200:]))
    # Prediction block by block on a Dask array.
    pred = wrappers.ParallelPostFit(est).predict(da.from_array(X[1200:], chunks=150))
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), est.predict(X[1200:]))


@pytest.mark.parametrize("cls", [CNNClassifier, Conv1DRegressor])
def test_partial_fit_sample_weight_zero_is_leaving_the_sample_out(cls):
    # sample_weight reaches partial_fit: weight 0 on half a chunk trains
    # exactly as the other half alone (weights 1), and other weights change
    # the result
    rng = np.random.RandomState(0)
    if cls is CNNClassifier:
        X = rng.rand(40, 1, 8, 8).astype(np.float32)
        y = (X[:, 0, :4].mean(axis=(1, 2)) > 0.5).astype(int)
        kw = {"classes": [0, 1]}
    else:
        X = rng.randn(40, 1, 30).astype(np.float32)
        y = X[:, 0, :5].sum(axis=1)
        kw = {}
    params = dict(random_state=0, device="cpu", batch_size=8)
    w = np.r_[np.zeros(20), np.ones(20)]
    weighted = cls(**params).partial_fit(X, y, sample_weight=w, **kw)
    half = cls(**params).partial_fit(X[20:], y[20:], **kw)
    out = "predict_proba" if cls is CNNClassifier else "predict"
    np.testing.assert_allclose(getattr(weighted, out)(X), getattr(half, out)(X),
                               rtol=1e-6, atol=1e-7)
    other = cls(**params).partial_fit(X, y, sample_weight=np.r_[np.full(20, 3.0), w[20:]],
                                      **kw)
    assert not np.allclose(getattr(other, out)(X), getattr(half, out)(X), atol=1e-4)
