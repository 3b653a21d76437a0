"""Device choices, tested without a GPU by simulating torch's CUDA queries.

What runs where is decided by three small functions: ``resolve_device``
(``device='auto'``), ``_keeps_data_on`` (copy the training data to the GPU
once) and ``_uses_channels_last`` (channels-last memory format for images on
CUDA). Here ``torch.cuda.is_available`` and ``torch.cuda.mem_get_info`` are
monkeypatched; the real CUDA runs are in ``test_performance.py`` (marked
``gpu``, skipped without one).
"""

import numpy as np
import pytest
import torch

from skcnn import CNNClassifier, Conv1DClassifier
from skcnn._base import _keeps_data_on, _uses_channels_last
from skcnn._data import ArrayDataset
from skcnn._net import _Net
from skcnn._utils import resolve_device

from .conftest import FAST


@pytest.fixture
def cuda(monkeypatch):
    """Pretend CUDA is available; record the memory queries."""
    queries = []
    state = {"free": 8 * 2**30}

    def mem_get_info(device=None):
        queries.append(device)
        return state["free"], 16 * 2**30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    state["queries"] = queries
    return state


@pytest.fixture
def no_cuda(monkeypatch):
    def fail(*args, **kwargs):  # pragma: no cover - the test fails if called
        raise AssertionError("CUDA was queried on a CPU-only machine")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "mem_get_info", fail)


def test_auto_is_cuda_when_torch_sees_a_gpu(cuda):
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device(torch.device("cuda", 1)) == "cuda:1"
    assert resolve_device("cpu") == "cpu"


def test_auto_is_the_cpu_without_a_gpu(no_cuda):
    assert resolve_device("auto") == "cpu"
    assert resolve_device(torch.device("cpu")) == "cpu"
    for device in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(ValueError, match="CUDA is not available on this "
                           "machine; use device='auto' or 'cpu'"):
            resolve_device(device)


@pytest.mark.parametrize("device, error, match", [
    ("gpu", ValueError, "device must be 'auto' or a torch device string"),
    ("", ValueError, "got ''"),
    (0, TypeError, "got 0"),
    (None, TypeError, "got None"),
])
def test_bad_device_values(device, error, match):
    with pytest.raises(error, match=match):
        resolve_device(device)


def test_fit_with_auto_on_a_cpu_only_machine(no_cuda, small_digits):
    X, y = small_digits
    clf = CNNClassifier(device="auto", **FAST).fit(X, y)
    assert clf.net_.device == "cpu"
    assert clf.net_.channels_last is False
    assert clf.predict(X[:5]).shape == (5,)


def dataset(n_bytes_x, n_bytes_y=0):
    X = torch.zeros(n_bytes_x // 4, dtype=torch.float32)
    y = torch.zeros(n_bytes_y // 8, dtype=torch.long) if n_bytes_y else None
    return ArrayDataset(X, y)


def test_data_stay_on_the_cpu_for_the_cpu(no_cuda):
    assert not _keeps_data_on("cpu", dataset(400))
    assert not _keeps_data_on("mps", dataset(400))


def test_data_go_to_the_gpu_when_they_take_less_than_half_its_free_memory(cuda):
    cuda["free"] = 2000
    assert _keeps_data_on("cuda", dataset(996))
    assert not _keeps_data_on("cuda", dataset(1000))  # exactly half: no
    # Inputs and targets both count.
    assert _keeps_data_on("cuda", dataset(800, 160))
    assert not _keeps_data_on("cuda", dataset(800, 200))
    # The free memory of the device asked for is the one queried.
    _keeps_data_on("cuda:1", dataset(4))
    assert cuda["queries"][0] == torch.device("cuda")
    assert cuda["queries"][-1] == torch.device("cuda", 1)


def test_channels_last_for_images_on_cuda_only():
    assert _uses_channels_last(2, "cuda")
    assert _uses_channels_last(2, "cuda:1")
    assert not _uses_channels_last(1, "cuda")  # signals
    assert not _uses_channels_last(2, "cpu")
    assert not _uses_channels_last(2, "mps")


@pytest.mark.parametrize("Est, expected", [(CNNClassifier, True),
                                           (Conv1DClassifier, False)])
def test_the_estimator_builds_its_net_with_those_choices(small_digits, Est,
                                                         expected):
    X, y = small_digits
    if Est is Conv1DClassifier:
        X = X.reshape(len(X), -1)
    est = Est(**FAST).fit(X, y)
    # The net a fit on "cuda" would train (built, not initialised: no GPU).
    net = est._build_net(10, len(X), torch.nn.CrossEntropyLoss, {},
                         torch.Generator(), "cuda")
    assert net.device == "cuda"
    assert net.channels_last is expected


def test_channels_last_net_stores_the_module_and_inputs_channels_last(small_digits):
    """What the switch does, checked on the CPU (same outputs, other layout)."""
    X, y = small_digits
    X = np.stack([X, 1 - X, X**2], axis=1).astype(np.float32)  # 3 channels
    clf = CNNClassifier(**FAST).fit(X, y)
    expected = clf.predict_proba(X)
    net = _Net(module=clf.module_, criterion=torch.nn.CrossEntropyLoss,
               channels_last=True, device="cpu").initialize()
    weight = net.module_.features[0][0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    net.module_.eval()
    seen = []
    net.module_.register_forward_pre_hook(
        lambda m, args: seen.append((args[0].is_contiguous(
            memory_format=torch.channels_last), args[0].is_contiguous())))
    with torch.no_grad():
        logits = net.infer(torch.as_tensor(X))
    assert seen == [(True, False)]
    np.testing.assert_allclose(torch.softmax(logits, 1).numpy(), expected,
                               rtol=1e-4, atol=1e-6)
