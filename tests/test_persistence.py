"""skcnn.save / skcnn.load without pickle, and skcnn.export_onnx."""

import json
import pickle
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

import skcnn
from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor
from skcnn.models import _registry

pytest.importorskip("safetensors")

FAST = dict(max_epochs=1, batch_size=16, random_state=0, device="cpu")


class TinyNet(nn.Module):
    """A user's network: not importable from the saved file."""

    def __init__(self, in_channels, n_outputs, hidden=6):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.head = nn.LazyLinear(n_outputs)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).flatten(1))


def _images(n=40, shape=(1, 8, 8), seed=0):
    rng = np.random.RandomState(seed)
    return rng.rand(n, *shape).astype(np.float32)


def _fitted(family):
    """One fitted estimator of each architecture family, and its X."""
    rng = np.random.RandomState(0)
    if family == "2d_builtin":  # string labels, DataFrame columns, class weights
        X = pd.DataFrame(_images().reshape(40, -1),
                         columns=[f"px{i}" for i in range(64)])
        y = np.array(["cat", "dog", "eel"])[rng.randint(0, 3, 40)]
        est = CNNClassifier(channels=(4, 8), dropout=0.2, class_weight="balanced",
                            **FAST)
    elif family == "1d_builtin":  # masked FCN, normalize, 2 outputs in big units
        X = rng.randn(40, 2, 30).astype(np.float32)
        y = 1e3 * np.c_[X[:, 0, :5].sum(1), X[:, 1].mean(1)]
        est = Conv1DRegressor("fcn", channels=(4, 8, 4), normalize="zscore", **FAST)
    elif family == "1d_classifier":
        X = rng.randn(40, 30).astype(np.float32)
        y = (X[:, :15].mean(1) > 0).astype(bool)
        est = Conv1DClassifier("resnet", channels=(4, 4, 4), **FAST)
    elif family == "1d_scale":  # KeepScale: the network z-normalises itself
        X = rng.randn(40, 2, 30).astype(np.float32) * np.logspace(-3, 3, 40)[:, None, None]
        y = np.arange(40) % 3
        est = Conv1DClassifier("fcn", channels=(4, 4, 4), **FAST)
    elif family == "backbone":  # torchvision resnet18 with its Normalize layer
        X = _images(16, (1, 32, 32))
        y = X.mean(axis=(1, 2, 3))
        est = CNNRegressor("resnet18", weights=None, **FAST)
    elif family == "user_module":
        X = _images()
        y = rng.randint(0, 2, 40)
        est = CNNClassifier(TinyNet, module__hidden=5, optimizer=torch.optim.SGD,
                            **FAST)
    return est.fit(X, y), X


FAMILIES = ["2d_builtin", "1d_builtin", "1d_classifier", "1d_scale", "backbone",
            "user_module"]


def _outputs(est, X):
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X)
    return est.predict(X)


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_predicts_identically(family, tmp_path, monkeypatch):
    est, X = _fitted(family)
    path = tmp_path / "model.safetensors"
    skcnn.save(est, path)

    # No pickle anywhere on the way back.
    def no_pickle(*args, **kwargs):
        raise AssertionError("skcnn.load unpickled something")

    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    loaded = skcnn.load(path, architectures=[TinyNet] if family == "user_module" else None)
    monkeypatch.undo()

    assert type(loaded) is type(est)
    np.testing.assert_array_equal(_outputs(loaded, X), _outputs(est, X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.get_params() == est.get_params()
    assert loaded.input_shape_ == est.input_shape_
    assert loaded.n_features_in_ == est.n_features_in_
    for attr in ("classes_", "feature_names_in_", "y_mean_", "y_scale_"):
        if hasattr(est, attr):
            np.testing.assert_array_equal(getattr(loaded, attr), getattr(est, attr))
            assert getattr(loaded, attr).dtype == getattr(est, attr).dtype
    assert loaded.history_[:, "train_loss"] == est.history_[:, "train_loss"]
    if family == "1d_builtin":  # other lengths still work (masked network)
        X_short = X[:5, :, :20]
        np.testing.assert_array_equal(loaded.predict(X_short), est.predict(X_short))
    # the loss is rebuilt as it was (class weights are per-sample weights of
    # fit, so nothing of them is needed after it)
    assert type(loaded.net_.criterion_) is type(est.net_.criterion_)
    assert (loaded.net_.get_params_for("criterion")
            == est.net_.get_params_for("criterion"))


def test_user_module_is_refused_unless_passed(tmp_path):
    est, X = _fitted("user_module")
    skcnn.save(est, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"names 'TinyNet' .*never imports code.*"
                                         r"architectures=\[TinyNet\]"):
        skcnn.load(tmp_path / "m.safetensors")


def _rewrite(path, change):
    """Edit the JSON inside a saved file, as an attacker could."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["skcnn"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    change(meta)
    save_file(tensors, str(path), metadata={"skcnn": json.dumps(meta)})


@pytest.mark.parametrize("where", ["params", "criterion", "attributes"])
def test_a_file_naming_foreign_code_is_refused_without_importing_it(where, tmp_path):
    est, _ = _fitted("2d_builtin")
    path = tmp_path / "evil.safetensors"
    skcnn.save(est, path)
    evil = {"__class__": "this:rot13"}  # a module that prints when imported

    def change(meta):
        if where == "params":
            meta["params"]["optimizer"] = evil
        elif where == "criterion":
            meta["criterion"]["class"] = evil
        else:
            meta["attributes"]["_seed"] = evil

    _rewrite(path, change)
    assert "this" not in sys.modules
    with pytest.raises(ValueError, match="'rot13' .*'this'.*never imports"):
        skcnn.load(path)
    assert "this" not in sys.modules


def test_registered_architecture_must_be_registered_or_passed(tmp_path, monkeypatch):
    def tiny_builder(*, in_channels, n_outputs, input_size):
        return TinyNet(in_channels, n_outputs)

    monkeypatch.setitem(_registry._MODELS[2], "tiny_registered", tiny_builder)
    est = CNNClassifier("tiny_registered", **FAST).fit(_images(), np.arange(40) % 2)
    skcnn.save(est, tmp_path / "m.safetensors")
    monkeypatch.delitem(_registry._MODELS[2], "tiny_registered")
    with pytest.raises(ValueError, match="'tiny_registered', a builder registered"):
        skcnn.load(tmp_path / "m.safetensors")
    loaded = skcnn.load(tmp_path / "m.safetensors",
                        architectures={"tiny_registered": tiny_builder})
    X = _images(5, seed=1)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    _registry._MODELS[2].pop("tiny_registered", None)


def test_cuda_trained_model_loads_on_cpu(tmp_path, monkeypatch):
    est, X = _fitted("2d_builtin")
    est.device = "cuda:0"  # as fitted on a GPU: save moves tensors to the CPU
    skcnn.save(est, tmp_path / "gpu.safetensors")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = skcnn.load(tmp_path / "gpu.safetensors")
    assert loaded.device == "cpu"
    assert loaded.net_.device == "cpu"
    assert next(loaded.module_.parameters()).device.type == "cpu"
    est.device = "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_unsaveable_parameters_are_dropped_with_a_warning(tmp_path):
    from skorch.callbacks import EpochTimer

    est = CNNClassifier(callbacks=[EpochTimer()], **FAST).fit(_images(), np.arange(40) % 2)
    with pytest.warns(UserWarning, match=r"does not store the parameters \['callbacks'\]"):
        skcnn.save(est, tmp_path / "m.safetensors")
    assert skcnn.load(tmp_path / "m.safetensors").callbacks is None


def test_save_and_load_errors(tmp_path):
    with pytest.raises(NotFittedError):
        skcnn.save(CNNClassifier(), tmp_path / "m.safetensors")
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        skcnn.load(tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(ValueError, match="not a safetensors file written by skcnn.save"):
        skcnn.load(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="without skcnn's metadata"):
        skcnn.load(tmp_path / "other.safetensors")


# ---------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["2d_builtin", "1d_builtin", "1d_scale", "backbone"])
def test_onnx_export_matches_the_estimator(family, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    est, _ = _fitted(family)
    rng = np.random.RandomState(1)
    X = rng.rand(100, *est.input_shape_).astype(np.float32)
    if family == "1d_builtin":
        X = 5 * X + 3  # far from zero mean and unit scale: normalize matters
    if family == "1d_scale":  # scales spanning six orders of magnitude
        X = X * np.logspace(-3, 3, 100, dtype=np.float32)[:, None, None]
    path = skcnn.export_onnx(est, tmp_path / "model.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": X})
    if family == "2d_builtin":
        want = est.predict_proba(pd.DataFrame(X.reshape(100, -1),
                                              columns=est.feature_names_in_))
        assert session.get_outputs()[0].name == "probabilities"
    elif family == "1d_scale":
        assert est.normalize_ == "zscore+scale"
        want = est.predict_proba(X)
        assert session.get_outputs()[0].name == "probabilities"
    else:
        want = est.predict(X).reshape(100, -1)
        assert session.get_outputs()[0].name == "predictions"
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_export_onnx_needs_a_fitted_estimator(tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(NotFittedError):
        skcnn.export_onnx(Conv1DRegressor(), tmp_path / "m.onnx")


@pytest.mark.parametrize("case", ["multilabel_focal", "huber", "partial_fit"])
def test_round_trip_of_targets_losses_and_partial_fit(tmp_path, case):
    # the fitted state of multi-label targets (their dtype), a chosen loss
    # and a partial_fit sequence survive the round trip
    X = _images()
    rng = np.random.RandomState(1)
    if case == "multilabel_focal":
        Y = (rng.rand(len(X), 3) > 0.5).astype(np.int64)
        est = CNNClassifier(loss="focal", **FAST).fit(X, Y)
    elif case == "huber":
        est = CNNRegressor(loss="huber", **FAST).fit(X, X.mean(axis=(1, 2, 3)))
    else:
        est = CNNClassifier(**FAST).partial_fit(X, X[:, 0, 0, 0] > 0.5,
                                                classes=[False, True])
    skcnn.save(est, tmp_path / "m.safetensors")
    loaded = skcnn.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(_outputs(loaded, X), _outputs(est, X))
    pred = loaded.predict(X)
    np.testing.assert_array_equal(pred, est.predict(X))
    assert pred.dtype == est.predict(X).dtype
    assert type(loaded.net_.criterion_) is type(est.net_.criterion_)


@pytest.mark.parametrize("cls, shape", [(CNNClassifier, (1, 8, 8)),
                                        (Conv1DClassifier, (1, 30))])
def test_onnx_export_of_dilated_and_separable_convolutions(cls, shape, tmp_path):
    # ONNX Runtime refuses a 'same' (auto_pad) convolution with a dilation:
    # the zeros are explicit, an odd count (kernel 4, dilation 3) included.
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    X = _images(shape=shape)
    est = cls("convnet", kernel_size=4, module__dilation=(1, 3),
              module__separable=True, **FAST).fit(X, np.arange(len(X)) % 2)
    path = skcnn.export_onnx(est, tmp_path / "model.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": X})
    np.testing.assert_allclose(got, est.predict_proba(X), atol=1e-4, rtol=1e-4)


def test_onnx_export_of_a_multilabel_classifier(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    X = _images()
    Y = (np.random.RandomState(1).rand(len(X), 3) > 0.5).astype(np.int64)
    est = CNNClassifier(**FAST).fit(X, Y)
    path = skcnn.export_onnx(est, tmp_path / "model.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": X})
    # one independent probability per label (sigmoids), not a softmax
    np.testing.assert_allclose(got, est.predict_proba(X), atol=1e-4, rtol=1e-4)
