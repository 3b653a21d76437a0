"""skcnn.inspection: attributions land on the evidence, on every input format."""

import copy
import sys

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from torch import nn

from skcnn import (
    CNNClassifier,
    CNNRegressor,
    Conv1DClassifier,
    Conv1DRegressor,
    inspection,
)

pytest.importorskip("captum")

TILE = 5  # side of the pattern tile (images) / length of the bump (series)


def pattern_images(n, seed, size=16):
    """Noise images holding one 5x5 tile at a random position.

    The tile holds a bright bar of 3 pixels through its centre: horizontal
    for class 'h', vertical for class 'v'. Returns X (n, size, size), the
    labels and each tile's top-left corner.
    """
    rng = np.random.RandomState(seed)
    X = rng.uniform(0, 0.2, size=(n, size, size)).astype(np.float32)
    y = np.where(rng.randint(0, 2, n) == 1, "v", "h")
    corners = rng.randint(0, size - TILE, size=(n, 2))
    for img, label, (r, c) in zip(X, y, corners):
        if label == "h":
            img[r + 2, c + 1:c + 4] = 1.0
        else:
            img[r + 1:r + 4, c + 2] = 1.0
    return X, y, corners


BUMP = 8


def pattern_series(n, seed, length=64, unequal=False):
    """Noise series with one bump of 8 steps at a random start: up (class 0)
    or down (class 1). ``unequal``: lengths from 40 to 64, as a list."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    series, starts = [], []
    for label in y:
        L = rng.randint(40, length + 1) if unequal else length
        s = rng.normal(0, 0.1, L).astype(np.float32)
        start = rng.randint(0, L - BUMP)
        s[start:start + BUMP] += (1 if label == 0 else -1) * 2 * np.hanning(BUMP)
        series.append(s)
        starts.append(start)
    return (series if unequal else np.stack(series)), y, np.array(starts)


class SmallCNN(nn.Module):
    """A user architecture: two 3x3 convolutions, global average pooling."""

    def __init__(self, in_channels, n_outputs):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(16, n_outputs)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


@pytest.fixture(scope="module")
def images2d():
    torch.set_num_threads(1)
    X, y, corners = pattern_images(300, seed=0)
    clf = CNNClassifier(SmallCNN, max_epochs=15, lr=1e-2, batch_size=32,
                        random_state=0).fit(X, y)
    X_test, y_test, c_test = pattern_images(60, seed=1)
    assert clf.score(X_test, y_test) == 1.0
    return clf, X_test, y_test, c_test


FCN = dict(channels=(8, 16, 16), max_epochs=10, lr=1e-2, batch_size=32,
           random_state=0)


@pytest.fixture(scope="module")
def series1d():
    X, y, _ = pattern_series(200, seed=0)
    clf = Conv1DClassifier("fcn", **FCN).fit(X, y)
    X_test, y_test, starts = pattern_series(60, seed=1)
    assert clf.score(X_test, y_test) == 1.0
    return clf, X_test, starts


@pytest.fixture(scope="module")
def unequal1d():
    X, y, _ = pattern_series(200, seed=0, unequal=True)
    clf = Conv1DClassifier("fcn", **FCN).fit(X, y)
    X_test, y_test, starts = pattern_series(40, seed=1, unequal=True)
    assert clf.score(X_test, y_test) == 1.0
    return clf, X_test, starts


METHODS = {
    "grad_cam": inspection.grad_cam,
    "hires_cam": inspection.hires_cam,
    "saliency": inspection.saliency,
    "guided_backprop": lambda est, X: inspection.saliency(
        est, X, method="guided_backprop"),
    "integrated_gradients": lambda est, X: inspection.saliency(
        est, X, method="integrated_gradients"),
    "occlusion": lambda est, X: inspection.occlusion(est, X, window=3, stride=1),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_attribution_peaks_on_the_pattern_2d(images2d, method):
    clf, X, _, corners = images2d
    A = METHODS[method](clf, X)
    assert A.shape == X.shape and A.dtype == np.float32
    peaks = [np.unravel_index(np.argmax(a), a.shape) for a in A]
    inside = [r <= i < r + TILE and c <= j < c + TILE
              for (i, j), (r, c) in zip(peaks, corners)]
    assert np.mean(inside) >= 0.9


@pytest.mark.parametrize("method", list(METHODS))
def test_attribution_peaks_on_the_pattern_1d(series1d, method):
    clf, X, starts = series1d
    A = METHODS[method](clf, X)
    assert A.shape == X.shape
    inside = [s <= np.argmax(a) < s + BUMP for a, s in zip(A, starts)]
    assert np.mean(inside) >= 0.9


@pytest.mark.parametrize("method", list(METHODS))
def test_masked_series_attributions(unequal1d, method):
    clf, X, starts = unequal1d
    A = METHODS[method](clf, X)
    lengths = np.array([len(s) for s in X])
    assert A.shape == (len(X), lengths.max())
    padding = np.arange(A.shape[1])[None, :] >= lengths[:, None]
    assert np.all(A[padding] == 0)
    assert np.all(np.abs(A).max(1) > 0)
    inside = [s <= np.argmax(a) < s + BUMP for a, s in zip(A, starts)]
    assert np.mean(inside) >= 0.9
    # A series explained within a padded batch or alone: the same map.
    # (Occlusion: but for the last steps, which windows that overhang the
    # padding cover more often than the windows of the series alone.)
    short = int(np.argmin(lengths))
    alone = METHODS[method](clf, [X[short]])
    end = lengths[short] - (2 if method == "occlusion" else 0)
    np.testing.assert_allclose(alone[0, :end], A[short, :end], rtol=1e-3,
                               atol=1e-5 * np.abs(A[short]).max())


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients (Springenberg et al.)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


class _Guided(nn.Module):
    def forward(self, x):
        return _GuidedReLU.apply(x)


def test_guided_backprop_passes_only_positive_gradients_through_relus(images2d):
    clf, X, _, _ = images2d
    X = X[:6]
    A = inspection.saliency(clf, X, method="guided_backprop", keep_channels=True)
    guided = copy.deepcopy(clf.module_).eval()
    for seq in (m for m in guided.modules() if isinstance(m, nn.Sequential)):
        for i, layer in enumerate(seq):
            if isinstance(layer, nn.ReLU):
                seq[i] = _Guided()
    x = torch.from_numpy(X[:, None]).requires_grad_()
    out = guided(x)
    out.gather(1, out.argmax(1, keepdim=True)).sum().backward()
    np.testing.assert_allclose(A, x.grad.numpy(), rtol=1e-5, atol=1e-7)
    plain = inspection.saliency(clf, X, keep_channels=True)
    assert not np.allclose(np.abs(A), plain, atol=1e-4)


def test_default_layer_is_the_last_conv_block(images2d, series1d):
    clf, *_ = images2d
    assert inspection.last_conv_block(clf.module_, clf.input_shape_) == "features"
    fcn = series1d[0]
    # FCN: the last ConvNormAct block (after batch norm and ReLU), the CAM layer
    assert inspection.last_conv_block(fcn.module_, fcn.input_shape_) == "blocks.2"
    np.testing.assert_array_equal(
        inspection.grad_cam(fcn, series1d[1][:4]),
        inspection.grad_cam(fcn, series1d[1][:4], layer="blocks.2"))


def test_cam_of_wang_et_al(series1d):
    """With GAP + linear, Grad-CAM without ReLU is sum_k w_k^c A_k(t) / L."""
    clf, X, _ = series1d
    cam = inspection.grad_cam(clf, X[:5], relu=False)
    maps = inspection.activations(clf, X[:5], "blocks.2")  # (n, 16, L)
    pred = np.searchsorted(clf.classes_, clf.predict(X[:5]))
    w = clf.module_.fc.weight.detach().numpy()[pred]  # (n, 16)
    expected = np.einsum("nk,nkt->nt", w, maps) / X.shape[1]
    np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6)


def test_hires_cam_weighs_each_position_by_its_own_gradient(images2d, series1d):
    _, X, y, _ = images2d
    # 'convnet' ends in a dense layer: each position has its own gradient.
    clf = CNNClassifier(channels=(4,), hidden_units=(), max_epochs=2,
                        random_state=0).fit(X, y)
    assert inspection.last_conv_block(clf.module_, clf.input_shape_) == "features.0"
    maps = {}
    net = copy.deepcopy(clf.module_).eval()
    net.features[0].register_forward_hook(lambda _m, _i, out: maps.setdefault("A", out))
    out = net(torch.from_numpy(X[:, None]))
    grad, = torch.autograd.grad(out.gather(1, out.argmax(1, keepdim=True)).sum(),
                                maps["A"])
    expected = (grad * maps["A"]).sum(1).clamp(min=0).detach().numpy()  # as X
    np.testing.assert_allclose(inspection.hires_cam(clf, X), expected,
                               rtol=1e-4, atol=1e-6)
    # Grad-CAM averages the gradient over positions: another map here ...
    assert not np.allclose(inspection.grad_cam(clf, X), expected, atol=1e-4)
    # ... but the class activation map after global average pooling and
    # one linear layer, as HiResCAM is.
    small, X_small = images2d[0], X[:6]
    np.testing.assert_allclose(inspection.hires_cam(small, X_small),
                               inspection.grad_cam(small, X_small), rtol=1e-4, atol=1e-6)
    fcn, Xs, _ = series1d
    np.testing.assert_allclose(inspection.hires_cam(fcn, Xs[:5], relu=False),
                               inspection.grad_cam(fcn, Xs[:5], relu=False),
                               rtol=1e-4, atol=1e-6)


def test_target_is_a_label(images2d):
    clf, X, y, _ = images2d
    X = X[:8]
    both = inspection.saliency(clf, X, target="h")
    predicted = inspection.saliency(clf, X)
    is_h = clf.predict(X) == "h"
    np.testing.assert_array_equal(both[is_h], predicted[is_h])
    assert not np.allclose(both[~is_h], predicted[~is_h])
    per_sample = inspection.saliency(clf, X, target=np.where(is_h, "h", "v"))
    np.testing.assert_array_equal(per_sample, predicted)
    with pytest.raises(ValueError, match=r"not in classes_ \['h', 'v'\]: 'x'"):
        inspection.grad_cam(clf, X, target="x")
    with pytest.raises(ValueError, match="one per sample"):
        inspection.grad_cam(clf, X, target=["h", "v"])


def test_any_input_format_of_the_estimator(images2d):
    clf, X, _, _ = images2d
    X = X[:6]
    reference = inspection.saliency(clf, X)
    # flat rows, read as 16 x 16 like predict does (a square: one channel)
    np.testing.assert_allclose(inspection.saliency(clf, X.reshape(6, -1)), reference)
    # channels-first with the channel axis
    np.testing.assert_allclose(inspection.saliency(clf, X[:, None]), reference)
    # uint8 images: scaled to [0, 1] by the estimator's preprocessing
    X8 = np.round(X * 255).astype(np.uint8)
    np.testing.assert_allclose(inspection.grad_cam(clf, X8),
                               inspection.grad_cam(clf, X8.astype(np.float32) / 255),
                               rtol=1e-5, atol=1e-7)
    # the caller's data are not modified
    before = X.copy()
    inspection.occlusion(clf, X)
    inspection.saliency(clf, X, method="smoothgrad", n_samples=4)
    np.testing.assert_array_equal(X, before)
    with pytest.raises(ValueError, match="per-sample shape"):
        inspection.saliency(clf, np.zeros((2, 3, 16, 16), np.float32))


def test_normalize_is_applied(series1d):
    X, y, _ = pattern_series(60, seed=2)
    clf = Conv1DClassifier("fcn", normalize="zscore", **{**FCN, "max_epochs": 2}).fit(X, y)
    # z-normalised inside: shifting and scaling a series changes nothing
    np.testing.assert_allclose(inspection.grad_cam(clf, X[:4] * 3 + 1),
                               inspection.grad_cam(clf, X[:4]), rtol=1e-4, atol=1e-6)


def test_regressors():
    X, _, starts = pattern_series(80, seed=0)
    height = np.linspace(0.5, 2, 80)
    X = X + 0  # the bump's height is the target
    for i, (s, h) in enumerate(zip(starts, height)):
        X[i, s:s + BUMP] += h * np.hanning(BUMP)
    reg = Conv1DRegressor("fcn", **{**FCN, "max_epochs": 3}).fit(X, height)
    for f in (inspection.saliency, inspection.grad_cam, inspection.occlusion):
        A = f(reg, X[:5])
        assert A.shape == (5, 64) and np.isfinite(A).all()
    Xi = np.random.RandomState(0).rand(20, 1, 8, 8).astype(np.float32)
    multi = CNNRegressor(max_epochs=1, channels=(4,), hidden_units=(), random_state=0)
    multi.fit(Xi, np.c_[Xi.mean((1, 2, 3)), Xi.std((1, 2, 3))])
    with pytest.raises(ValueError, match="2 outputs; pass target="):
        inspection.saliency(multi, Xi)
    a0 = inspection.saliency(multi, Xi, target=0)
    a1 = inspection.saliency(multi, Xi, target=1)
    assert a0.shape == (20, 8, 8) and not np.allclose(a0, a1)
    with pytest.raises(ValueError, match="index of an output, an int from 0 to 1"):
        inspection.saliency(multi, Xi, target=2)
    # the default 'convnet' (a dense head): Grad-CAM at its last block
    assert inspection.last_conv_block(multi.module_, multi.input_shape_) == "features.0"
    assert inspection.grad_cam(multi, Xi, target=1).shape == (20, 8, 8)


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.RandomState(0)
    X = rng.rand(16, 3, 32, 32).astype(np.float32)
    y = np.repeat([0, 1], 8)
    X[y == 1, :, :16] += 0.5
    return X, y


def test_torchvision_backbone(rgb):
    X, y = rgb
    clf = CNNClassifier("resnet18", max_epochs=1, batch_size=16, random_state=0).fit(X, y)
    assert inspection.last_conv_block(clf.module_, clf.input_shape_) == "backbone.layer4"
    cam = inspection.grad_cam(clf, X[:3])
    assert cam.shape == (3, 32, 32) and (cam >= 0).all()
    # names inside the backbone are accepted as they are
    np.testing.assert_array_equal(cam, inspection.grad_cam(clf, X[:3], layer="layer4"))
    assert inspection.filters(clf).shape == (64, 3, 7, 7)  # conv1, not Normalize
    assert inspection.activations(clf, X[:2], "layer3").shape == (2, 256, 2, 2)


def test_timm_backbone(rgb):
    pytest.importorskip("timm")
    X, y = rgb
    clf = CNNClassifier("timm:resnet10t", max_epochs=1, batch_size=16,
                        random_state=0).fit(X[:, :1], y)  # grey: 1 channel
    cam = inspection.grad_cam(clf, X[:2, :1])
    assert cam.shape == (2, 32, 32)
    assert inspection.saliency(clf, X[:2, :1], method="integrated_gradients",
                               n_steps=4).shape == (2, 32, 32)


def test_activations_and_filters(images2d):
    clf, X, _, _ = images2d
    maps = inspection.activations(clf, X[:5], "features.1")
    assert maps.shape == (5, 8, 16, 16) and maps.min() >= 0  # after the ReLU
    conv = clf.module_.features[0]
    with torch.no_grad():
        expected = torch.relu(conv(torch.from_numpy(X[:5, None]))).numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    weights = inspection.filters(clf)
    np.testing.assert_array_equal(weights, conv.weight.detach().numpy())
    weights[:] = 0  # a copy
    assert conv.weight.abs().sum() > 0
    assert inspection.filters(clf, "features.2").shape == (16, 8, 3, 3)
    with pytest.raises(ValueError, match=r"no layer 'featurs.1'.*features.1"):
        inspection.activations(clf, X[:2], "featurs.1")
    with pytest.raises(ValueError, match="not a convolution"):
        inspection.filters(clf, "fc")


def test_errors(images2d, monkeypatch):
    clf, X, _, _ = images2d
    with pytest.raises(NotFittedError):
        inspection.grad_cam(CNNClassifier(), X)
    with pytest.raises(TypeError, match="takes a fitted CNNClassifier"):
        inspection.saliency(LogisticRegression(), X)
    with pytest.raises(ValueError, match="'method' parameter of saliency must be"):
        inspection.saliency(clf, X, method="guided")
    with pytest.raises(ValueError, match="window must be a positive int or 2"):
        inspection.occlusion(clf, X, window=(2, 2, 2))
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(ImportError, match=r"pip install 'skcnn\[explain\]'"):
        inspection.saliency(clf, X)


# --------------------------------------------------------------------------
# Embeddings of a fitted estimator
# --------------------------------------------------------------------------

def test_embeddings_of_a_fitted_estimator(images2d):
    from sklearn.pipeline import make_pipeline

    from skcnn import PretrainedFeatureExtractor

    clf, X, y, _ = images2d
    extractor = PretrainedFeatureExtractor(backbone=clf).fit(X)
    assert extractor.estimator_ is clf and extractor.n_features_out_ == 16
    Z = extractor.transform(X.reshape(len(X), -1))  # the estimator's formats
    with torch.no_grad():  # the input of the head: pooled last feature maps
        expected = clf.module_.features(torch.from_numpy(X[:, None])).mean((2, 3))
    np.testing.assert_allclose(Z, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert list(extractor.get_feature_names_out()[:2]) == ["cnnclassifier_0",
                                                          "cnnclassifier_1"]
    model = make_pipeline(PretrainedFeatureExtractor(clf),
                          LogisticRegression(max_iter=1000)).fit(X[:40], y[:40])
    assert model.score(X[40:], y[40:]) >= 0.9
    with pytest.raises(ValueError, match=r"leave \['input_size'\] at their defaults"):
        PretrainedFeatureExtractor(clf, input_size=64).fit(X)


def test_embeddings_of_padded_series(unequal1d):
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import cross_val_score

    from skcnn import PretrainedFeatureExtractor

    clf, X, _ = unequal1d
    extractor = PretrainedFeatureExtractor(FrozenEstimator(clf)).fit(X)
    Z = extractor.transform(X)
    assert Z.shape == (len(X), 16)
    short = int(np.argmin([len(s) for s in X]))
    np.testing.assert_allclose(extractor.transform([X[short]])[0], Z[short],
                               rtol=1e-4, atol=1e-6)
    pooled = PretrainedFeatureExtractor(clf, layer="blocks.1", pooling="max").fit(X)
    np.testing.assert_allclose(pooled.transform([X[short]])[0],
                               pooled.transform(X)[short], rtol=1e-4, atol=1e-6)
    # unfitted (as clone leaves it): fitted on each training fold
    Xs, ys, _ = pattern_series(40, seed=3)
    est = Conv1DClassifier("fcn", **{**FCN, "max_epochs": 2})
    pipe = PretrainedFeatureExtractor(est)
    from sklearn.pipeline import make_pipeline

    scores = cross_val_score(make_pipeline(pipe, LogisticRegression()), Xs, ys, cv=2)
    assert scores.shape == (2,)
    with pytest.raises(ValueError, match="y is needed"):
        PretrainedFeatureExtractor(est).fit(Xs)


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------

class Tiny(nn.Module):
    """conv 3x3 -> max-pool 2 -> conv 3x3 dilated 2 -> mean -> linear."""

    def __init__(self, in_channels, n_outputs):
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, 4, 3)
        self.pool = nn.MaxPool2d(2)
        self.c2 = nn.Conv2d(4, 6, 3, dilation=2)
        self.fc = nn.Linear(6, n_outputs)

    def forward(self, x):
        return self.fc(self.c2(self.pool(torch.relu(self.c1(x)))).mean((2, 3)))


def test_summary_against_hand_counts():
    from skcnn import summary

    table = summary(CNNClassifier(Tiny), input_shape=(2, 16, 16), n_outputs=3)
    assert list(table["name"]) == ["c1", "pool", "c2", "fc"]
    assert list(table["type"]) == ["Conv2d", "MaxPool2d", "Conv2d", "Linear"]
    # 16 - 2 = 14; pooled 7; 7 - 2 * 2 = 3
    assert list(table["output_shape"]) == [(4, 14, 14), (4, 7, 7), (6, 3, 3), (3,)]
    assert list(table["trainable_params"]) == [4 * 2 * 9 + 4, 0, 6 * 4 * 9 + 6,
                                               6 * 3 + 3]
    # a multiply-add is 2 FLOPs, per output value
    assert list(table["flops"]) == [2 * 2 * 9 * 4 * 14 * 14, 0,
                                    2 * 4 * 9 * 6 * 3 * 3, 2 * 6 * 3]
    assert table.attrs["total_params"] == 319
    assert table.attrs["flops"] == 32148
    # 3; + (2 - 1) = 4 at stride 2; + (3 - 1) * 2 * 2 = 12
    assert table.attrs["receptive_field"] == (12, 12)
    text = str(table)
    assert "Parameters: 319 (trainable 319, frozen 0)" in text
    assert "Receptive field of the last convolution: 12 x 12" in text
    assert "4 x 14 x 14" in text


def test_summary_of_fitted_and_frozen(series1d):
    from skcnn import summary

    clf = series1d[0]
    table = summary(clf)
    assert table.attrs["input_shape"] == (1, 64)
    assert table.attrs["receptive_field"] == (8 + 5 + 3 - 2,)  # FCN: 14
    assert table.attrs["total_params"] == sum(p.numel() for p in clf.module_.parameters())
    assert summary(Conv1DClassifier("fcn", **FCN), input_shape=(64,)).attrs[
        "total_params"] == table.attrs["total_params"]
    frozen = summary(CNNClassifier("resnet18", freeze="backbone"),
                     input_shape=(3, 32, 32), n_outputs=4)
    assert frozen.attrs["trainable_params"] == 512 * 4 + 4  # the new head only
    assert frozen.attrs["receptive_field"] == (435, 435)  # ResNet-18's
    with pytest.raises(ValueError, match="is not fitted: pass input_shape"):
        summary(CNNClassifier())
    with pytest.raises(ValueError, match=r"input_shape must be \(C, L\) or \(L,\)"):
        summary(Conv1DClassifier(), input_shape=(1, 2, 3))


@pytest.mark.parametrize("ndim, name, expected", [
    (2, "convnet", "features.2"),  # the second conv-BN-ReLU block, before its pool
    (2, "lenet5", "features.2"),
    (2, "inception", "features"),  # the concatenated branches, not the last branch
    (2, "densenet", "features"),
    (1, "fcn", "blocks.2"),
    (1, "resnet", "blocks.2"),
    (1, "inceptiontime", "networks.0.blocks.1"),
])
def test_default_layer_of_built_in_architectures(ndim, name, expected):
    from skcnn import get_model

    size = (32, 32) if ndim == 2 else (64,)
    module = get_model(name, ndim=ndim, in_channels=1, n_outputs=2, input_size=size)
    assert inspection.last_conv_block(module, (1, *size)) == expected
