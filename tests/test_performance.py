"""The fast in-memory data path: same results as skorch's, no hidden copies.

Timings live in ``benchmarks/``; these tests check the properties the speed
relies on. GPU tests are marked ``gpu`` and skipped without CUDA.
"""

import pickle
import warnings
import weakref

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from skorch.dataset import Dataset

from skcnn import CNNClassifier, Conv1DClassifier
from skcnn._data import ArrayDataset, BatchIterator
from skcnn._net import _Net
from skcnn._utils import torch_seed
from skcnn.models import get_model_builder

from .conftest import FAST

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class _SamePermutations(torch.utils.data.Sampler):
    """What BatchIterator draws: one ``torch.randperm`` per epoch, seeded."""

    def __init__(self, n, seed):
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def _small_net(**kwargs):
    return _Net(
        module=get_model_builder("convnet", ndim=2),
        module__in_channels=1, module__n_outputs=10, module__input_size=(8, 8),
        module__channels=(4, 8), module__hidden_units=(16,),  # batch norm, dropout
        criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-2,
        max_epochs=3, batch_size=32, train_split=None, device="cpu", verbose=0,
        **kwargs,
    )


def test_fast_path_trains_the_same_weights_as_skorchs_dataloader_path(small_digits):
    X, y = small_digits
    X = np.ascontiguousarray(X[:, None], dtype=np.float32)
    n = 250  # 250 % 32 = 26: a short last batch, no single-sample one
    X, y = X[:n], y[:n]

    fast = _small_net(generator=torch.Generator().manual_seed(7))
    with torch_seed(0):
        fast.fit(ArrayDataset(torch.from_numpy(X), torch.from_numpy(y)), None)

    # skorch's general path: per-sample Dataset + DataLoader collation, fed
    # the same permutations; its own generator keeps the DataLoader's seed
    # draw off the global RNG, which dropout uses.
    general = _small_net(iterator_train__sampler=_SamePermutations(n, 7),
                         iterator_train__generator=torch.Generator())
    with torch_seed(0):
        general.fit(Dataset(X, y), None)

    assert not isinstance(general.get_iterator(Dataset(X, y), training=True),
                          BatchIterator)
    fast_state, general_state = fast.module_.state_dict(), general.module_.state_dict()
    assert fast_state.keys() == general_state.keys()
    for key in fast_state:
        assert torch.equal(fast_state[key], general_state[key]), key
    assert fast.history[:, "train_loss"] == general.history[:, "train_loss"]
    assert fast.history[-1, "batches", :, "train_batch_size"] == [32] * 7 + [26]


class _GrabDataset(Callback):
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.dataset_ = X


@pytest.mark.parametrize("shape", [(60, 1, 8, 8), (60, 8, 8), (60, 64)],
                         ids=["nchw", "nhw", "flat"])
def test_fit_shares_the_memory_of_a_float32_array(shape):
    X = np.random.RandomState(0).rand(*shape).astype(np.float32)
    y = np.arange(60) % 3
    grab = _GrabDataset()
    CNNClassifier(**{**FAST, "max_epochs": 1}, callbacks=[grab]).fit(X, y)
    dataset = grab.dataset_
    assert isinstance(dataset, ArrayDataset)
    assert np.shares_memory(dataset.X.numpy(), X)
    assert dataset.X.data_ptr() == X.ctypes.data


def test_fit_of_a_long_series_set_shares_its_memory():
    X = np.random.RandomState(0).randn(40, 1, 256).astype(np.float32)
    grab = _GrabDataset()
    Conv1DClassifier(**{**FAST, "max_epochs": 1}, callbacks=[grab]).fit(
        X, np.arange(40) % 2)
    assert grab.dataset_.X.data_ptr() == X.ctypes.data


def _rss_peak_growth(fn):
    """Growth of the process's peak RSS (bytes) while ``fn`` runs (Linux)."""
    def kb(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field))

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pytest.skip("needs /proc/self/clear_refs (Linux)")
    before = kb("VmRSS:")
    fn()
    return (kb("VmHWM:") - before) * 1024


class _MeanLinear(torch.nn.Module):
    """A network that costs almost nothing per pixel: the data path dominates."""

    def __init__(self, in_channels, n_outputs):
        super().__init__()
        self.fc = torch.nn.Linear(in_channels, n_outputs)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def test_fit_and_predict_on_a_large_array_do_not_copy_it():
    # 128 MiB: above glibc's largest mmap threshold (32 MiB), so any copy of
    # X maps fresh pages and shows in the peak RSS. With this network, fit
    # and predict grow it by 0-2 MiB; with a copy of X, by 130 MiB.
    X = np.random.default_rng(0).random((32_768, 1, 32, 32), dtype=np.float32)
    y = np.arange(len(X)) % 2
    clf = CNNClassifier(_MeanLinear, max_epochs=2, batch_size=256,
                        lr_schedule=None, random_state=0)
    # A first run on a slice pays the one-time costs (torch's lazy kernel
    # set-up, code pages, allocator pools), which are not copies of X.
    clf.fit(X[:1024], y[:1024]).predict_proba(X[:1024])
    assert _rss_peak_growth(lambda: clf.fit(X, y)) < X.nbytes / 2
    assert _rss_peak_growth(lambda: clf.predict_proba(X)) < X.nbytes / 2


def test_predict_keeps_no_batch_alive_and_writes_one_array(small_digits):
    X, y = small_digits
    clf = CNNClassifier(**FAST).fit(X, y)
    X_big = np.concatenate([X.astype(np.float32)] * 4)  # 1200: 5 batches of 256
    seen = []

    def hook(module, args, output):
        # When batch k runs, batch k - 1 may still be bound to a loop
        # variable; anything older must already be freed.
        for refs in seen[:-1]:
            assert all(ref() is None for ref in refs), "an old batch is alive"
        seen.append((weakref.ref(args[0]), weakref.ref(output)))

    handle = clf.module_.register_forward_hook(hook)
    try:
        proba = clf.predict_proba(X_big)
    finally:
        handle.remove()
    assert len(seen) == 5
    assert all(ref() is None for refs in seen for ref in refs)
    assert proba.shape == (len(X_big), 10)
    np.testing.assert_allclose(proba[:300], clf.predict_proba(X), rtol=1e-6)


class _ModeRecorder(Callback):
    """Records the modes seen by each forward pass; after every batch, puts
    one submodule in eval mode."""

    def on_train_begin(self, net, **kwargs):
        self.modes_ = []
        net.module_.register_forward_pre_hook(
            lambda module, args: self.modes_.append(
                {m.training for m in module.modules()}))

    def on_batch_end(self, net, **kwargs):
        net.module_.features[0].eval()


def test_every_batch_runs_with_the_whole_module_in_one_mode(small_digits):
    # _Net skips nn.Module.train when the modes are already right; a
    # submodule switched to eval in between must still be switched back.
    X, y = small_digits
    recorder = _ModeRecorder()
    CNNClassifier(**{**FAST, "max_epochs": 2}, early_stopping=True,
                  callbacks=[recorder]).fit(X, y)
    modes = recorder.modes_
    assert {True} in modes and {False} in modes  # training and validation
    assert all(len(m) == 1 for m in modes)


def _dataset(n):
    return ArrayDataset(torch.arange(n, dtype=torch.float32)[:, None],
                        torch.arange(n))


@pytest.mark.parametrize("n, train_sizes, eval_sizes", [
    (65, [64], [64, 1]),
    (66, [64, 2], [64, 2]),
    (64, [64], [64]),
])
def test_a_final_single_sample_batch_is_dropped_in_training_only(
        n, train_sizes, eval_sizes):
    net = _small_net(generator=torch.Generator().manual_seed(0))
    net.batch_size = 64
    train = net.get_iterator(_dataset(n), training=True)
    valid = net.get_iterator(_dataset(n), training=False)
    assert isinstance(train, BatchIterator) and isinstance(valid, BatchIterator)
    assert [len(yb) for _, yb in train] == train_sizes
    assert [len(yb) for _, yb in valid] == eval_sizes
    assert (len(train), len(valid)) == (len(train_sizes), len(eval_sizes))


def test_a_single_sample_dataset_still_yields_its_sample():
    it = BatchIterator(_dataset(1), 64, drop_singleton=True)
    assert [len(yb) for _, yb in it] == [1]


@pytest.mark.parametrize("n, batch_size, sizes", [
    (36, 16, [12, 12, 12]),  # not 16, 16, 4
    (50, 16, [13, 13, 12, 12]),
    (129, 64, [43, 43, 43]),
    (64, 64, [64]),
    (3, 2, [2]),  # 2, 1: the single sample is dropped
    (5, 1, [1] * 5),  # batch_size=1 asks for single samples
])
def test_balanced_batches_cover_every_row_once(n, batch_size, sizes):
    it = BatchIterator(_dataset(n), batch_size, shuffle=True, drop_singleton=True,
                       balanced=True, generator=torch.Generator().manual_seed(0))
    batches = [yb for _, yb in it]
    assert [len(yb) for yb in batches] == sizes == it.batch_sizes()
    assert len(it) == len(sizes)
    rows = torch.cat(batches).tolist()
    assert len(set(rows)) == len(rows) == sum(sizes)


def test_an_estimator_trains_on_balanced_batches(small_digits):
    X, y = small_digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 2}, batch_size=64).fit(X[:129], y[:129])
    assert clf.history_[-1, "batches", :, "train_batch_size"] == [43, 43, 43]
    # The one-cycle schedule counts the same 3 steps per epoch, so it ends
    # with the last batch.
    scheduler = dict(clf.net_.callbacks_)["lr_schedule"].lr_scheduler_
    assert scheduler.total_steps == scheduler.last_epoch == 6


def _epochs(seed, n=50, epochs=3):
    it = BatchIterator(_dataset(n), 16, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    return [torch.cat([yb for _, yb in it]).tolist() for _ in range(epochs)]


def test_the_permutation_changes_every_epoch_and_follows_the_seed():
    first = _epochs(0)
    assert all(sorted(order) == list(range(50)) for order in first)
    assert first[0] != first[1] != first[2] != first[0]
    assert _epochs(0) == first
    assert _epochs(1) != first
    unshuffled = BatchIterator(_dataset(50), 16)
    assert torch.cat([yb for _, yb in unshuffled]).tolist() == list(range(50))


def test_inputs_and_targets_of_a_batch_stay_paired():
    it = BatchIterator(_dataset(50), 16, shuffle=True,
                       generator=torch.Generator().manual_seed(0))
    for Xb, yb in it:
        assert torch.equal(Xb[:, 0].long(), yb)


# -- torch.compile ----------------------------------------------------------
# The "eager" backend runs dynamo's tracing of the network and the graphs it
# captures without code generation: the plumbing, in a second instead of
# the 30 s inductor takes to compile on 2 CPU cores.

def test_compile_traces_the_network_in_place_and_pickles(small_digits):
    X, y = small_digits
    plain = CNNClassifier(**FAST, device="cpu").fit(X, y)
    compiled = CNNClassifier(**FAST, device="cpu", compile=True,
                             compile__backend="eager").fit(X, y)
    # Compiled in place: same module class and parameter names, so the
    # state_dict, freezing and per-layer learning rates work unchanged.
    assert type(compiled.module_) is type(plain.module_)
    assert compiled.module_._compiled_call_impl is not None
    assert plain.module_._compiled_call_impl is None
    assert list(compiled.module_.state_dict()) == list(plain.module_.state_dict())
    expected = plain.predict_proba(X)
    np.testing.assert_allclose(compiled.predict_proba(X), expected, atol=1e-6)
    # The compiled function does not travel; the loaded estimator runs eagerly.
    loaded = pickle.loads(pickle.dumps(compiled))
    assert loaded.module_._compiled_call_impl is None
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-6)


def test_compile_with_masked_series_and_layer_wise_rates():
    rng = np.random.default_rng(0)
    X = [rng.standard_normal(n).astype(np.float32) for n in rng.integers(20, 40, 24)]
    y = np.arange(24) % 2
    kwargs = dict(architecture="fcn", max_epochs=2, random_state=0, device="cpu",
                  lr_decay=0.5)
    plain = Conv1DClassifier(**kwargs).fit(X, y)
    compiled = Conv1DClassifier(**kwargs, compile=True,
                                compile__backend="eager").fit(X, y)
    assert compiled.module_._compiled_call_impl is not None
    np.testing.assert_allclose(compiled.predict_proba(X), plain.predict_proba(X),
                               atol=1e-5)


def test_compile_options_reach_torch_compile(small_digits, monkeypatch):
    seen = {}

    def fake_compile(self, **kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", fake_compile)
    X, y = small_digits
    CNNClassifier(**{**FAST, "max_epochs": 1}, device="cpu", compile=True,
                  compile__mode="max-autotune", compile__dynamic=False).fit(X, y)
    assert seen == {"mode": "max-autotune", "dynamic": False}
    seen.clear()
    CNNClassifier(**{**FAST, "max_epochs": 1}, device="cpu").fit(X, y)
    assert seen == {}


# -- CUDA -------------------------------------------------------------------

@pytest.mark.gpu
@cuda
def test_cuda_fit_and_predict(small_digits):
    X, y = small_digits
    clf = CNNClassifier(**FAST, device="cuda").fit(X, y)
    assert next(clf.module_.parameters()).is_cuda
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert clf.score(X, y) > 0.5


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_mixed_precision(small_digits, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    X, y = small_digits
    clf = CNNClassifier(**FAST, device="cuda", precision=precision).fit(X, y)
    losses = clf.history_[:, "train_loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert clf.predict_proba(X).dtype == np.float64
    # The weights stay float32; only the forward pass is autocast.
    assert all(p.dtype == torch.float32 for p in clf.module_.parameters())
    assert (clf.net_.scaler_ is not None) == (precision == "fp16")


@pytest.mark.gpu
@cuda
def test_cuda_fitted_estimator_loads_on_a_cpu_only_machine(small_digits, monkeypatch):
    X, y = small_digits
    clf = CNNClassifier(**FAST, device="cuda").fit(X, y)
    expected = clf.predict_proba(X)
    blob = pickle.dumps(clf)
    # The loading side: skorch maps CUDA tensors to the CPU when it sees no
    # CUDA device.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch's DeviceWarning
        loaded = pickle.loads(blob)
    assert all(not p.is_cuda for p in loaded.module_.parameters())
    assert loaded.net_.device == "cpu"
    np.testing.assert_allclose(loaded.predict_proba(X), expected, atol=1e-5)


@pytest.mark.gpu
@cuda
def test_cuda_compiled_fit_matches_eager(small_digits):
    X, y = small_digits
    eager = CNNClassifier(**FAST, device="cuda").fit(X, y)
    compiled = CNNClassifier(**FAST, device="cuda", compile=True).fit(X, y)
    assert compiled.module_._compiled_call_impl is not None
    # Fused kernels round differently; after 3 epochs the models agree on
    # nearly every prediction.
    agree = np.mean(compiled.predict(X) == eager.predict(X))
    assert agree > 0.9 and compiled.score(X, y) > 0.5
