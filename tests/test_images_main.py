"""Image inputs (issue 13) with what main added: sample weights, multi-label,
fixed-size prediction batches, checkpoints, partial_fit and save/load."""

import numpy as np
import pytest
import torch
from PIL import Image

from skcnn import CNNClassifier, CNNRegressor

from .test_images import FAST, _float


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def _weights(n):
    w = np.ones(n)
    w[:6] = 0.0  # left out of training
    w[6:20] = 3.0
    return w


@pytest.mark.parametrize("fmt", ["uint8 channels-last", "list of arrays", "torch Dataset"])
def test_sample_weight_reaches_every_input_route(rgb, fmt):
    images, y = rgb
    w = _weights(len(y))
    X = {"uint8 channels-last": images,
         "list of arrays": list(images),
         "torch Dataset": _ListDataset([torch.from_numpy(a).permute(2, 0, 1)
                                        for a in images])}[fmt]
    reference = CNNClassifier(**FAST).fit(_float(images), y, sample_weight=w)
    expected = reference.predict_proba(_float(images))
    est = CNNClassifier(**FAST).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(est.predict_proba(X), expected, atol=1e-5)
    unweighted = CNNClassifier(**FAST).fit(X, y).predict_proba(X)
    assert np.abs(unweighted - expected).max() > 1e-3  # the weights changed the fit


def test_zero_weight_images_are_left_out(rgb):
    images, y = rgb
    w = np.ones(len(y))
    w[:6] = 0.0
    for X, kept in [(images, images[6:]), (list(images), list(images[6:]))]:
        weighted = CNNClassifier(**FAST).fit(X, y, sample_weight=w)
        dropped = CNNClassifier(**FAST).fit(kept, y[6:])
        np.testing.assert_array_equal(weighted.predict_proba(X), dropped.predict_proba(X))


@pytest.mark.parametrize("fmt", ["uint8 channels-last", "list of arrays"])
def test_predictions_do_not_depend_on_the_batch(rgb, fmt):
    images, y = rgb
    X = images if fmt == "uint8 channels-last" else list(images)
    clf = CNNClassifier(**FAST, tta="flip").fit(X, y)
    whole = clf.predict_proba(X)
    for i in (0, 17, 59):
        np.testing.assert_array_equal(clf.predict_proba(X[i:i + 1]), whole[i:i + 1])
    np.testing.assert_array_equal(clf.predict_proba(X[10:23]), whole[10:23])


def test_multilabel_tta_averages_sigmoids(rgb):
    images, y = rgb
    Y = np.stack([y == 0, y == 1, images.mean(axis=(1, 2, 3)) > 40], axis=1).astype(int)
    X = _float(images)
    clf = CNNClassifier(**FAST, tta="flip").fit(X, Y)
    with_tta = clf.predict_proba(X)
    clf.set_params(tta=None)
    flipped = X[..., ::-1].copy()
    expected = (clf.predict_proba(X) + clf.predict_proba(flipped)) / 2
    np.testing.assert_allclose(with_tta, expected, atol=1e-6)
    # not the softmax over the labels: rows need not sum to 1
    assert np.abs(with_tta.sum(axis=1) - 1).max() > 0.1
    clf.set_params(tta="flip")
    np.testing.assert_array_equal(clf.predict(X), (with_tta > 0.5).astype(Y.dtype))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), with_tta, atol=1e-6)


def test_checkpoint_resumes_a_fit_on_files(rgb, tmp_path):
    images, y = rgb
    paths = []
    for i, a in enumerate(images):
        path = tmp_path / f"im{i}.png"
        Image.fromarray(a).save(path)
        paths.append(str(path))
    ckpt = tmp_path / "ckpt"
    first = CNNClassifier(**FAST, checkpoint_dir=str(ckpt)).fit(paths, y)
    again = CNNClassifier(**FAST, checkpoint_dir=str(ckpt)).fit(paths, y)
    assert again.net_.epochs_done_ == 0  # resumed after the last epoch: nothing to do
    np.testing.assert_array_equal(again.predict_proba(paths), first.predict_proba(paths))
    # a file rewritten since: not the checkpoint's data, refused
    Image.fromarray(255 - images[0]).save(paths[0])
    with pytest.raises(ValueError, match="holds a checkpoint of another fit"):
        CNNClassifier(**FAST, checkpoint_dir=str(ckpt)).fit(paths, y)


def test_checkpoint_refuses_a_torch_dataset(rgb, tmp_path):
    images, y = rgb
    data = _ListDataset([torch.from_numpy(a).permute(2, 0, 1) for a in images])
    est = CNNClassifier(**FAST, checkpoint_dir=str(tmp_path / "ckpt"))
    with pytest.raises(ValueError, match="checkpoint_dir cannot check that a torch Dataset"):
        est.fit(data, y)


def test_partial_fit_reads_uint8_channels_last_and_lists(rgb):
    images, y = rgb
    est = {}
    for name, X in {"uint8": images, "list": list(images),
                    "float": _float(images)}.items():
        clf = CNNClassifier(**FAST)
        clf.partial_fit(X[:30], y[:30], classes=[0, 1, 2])
        clf.partial_fit(X[30:], y[30:])
        assert clf.input_shape_ == (3, 8, 8)
        est[name] = clf.predict_proba(X)
    np.testing.assert_allclose(est["uint8"], est["float"], atol=1e-5)
    np.testing.assert_allclose(est["list"], est["float"], atol=1e-5)


def test_save_load_keeps_preprocessing(rgb, tmp_path):
    pytest.importorskip("safetensors")
    from skcnn import load, save

    images, y = rgb
    sizes = [np.pad(a, ((0, k % 3), (0, 0), (0, 0)), mode="edge")
             for k, a in enumerate(images)]  # heights 8 to 10
    reg = CNNRegressor(**FAST, input_size=8).fit(sizes, y.astype(float))
    save(reg, tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors")
    assert loaded.preprocessing_ == reg.preprocessing_
    assert loaded.preprocessing_["input_size"] == (8, 8)
    np.testing.assert_array_equal(loaded.predict(sizes), reg.predict(sizes))


def test_inspection_reads_every_image_format(rgb):
    from skcnn import inspection

    images, y = rgb
    clf = CNNClassifier(**FAST).fit(images, y)
    X = images[:5]
    expected = inspection.grad_cam(clf, _float(X))
    for name, Xi in {"uint8 channels-last": X, "list of arrays": list(X)}.items():
        np.testing.assert_allclose(inspection.grad_cam(clf, Xi), expected,
                                   rtol=1e-5, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(inspection.occlusion(clf, list(X)),
                               inspection.occlusion(clf, _float(X)), rtol=1e-5, atol=1e-7)
