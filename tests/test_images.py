"""Image inputs of CNNClassifier/CNNRegressor: formats, sizes, files, augmentation, TTA."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from skcnn import CNNClassifier, CNNRegressor
from skcnn._images import image_header, read_image

FAST = dict(channels=(4, 8), hidden_units=(16,), max_epochs=2, batch_size=16,
            random_state=0, device="cpu")


def _float(images):
    """The reference: float32 (n, C, H, W) in [0, 1]."""
    return (images.astype(np.float32) / 255).transpose(0, 3, 1, 2).copy()


def _write(tmp_path, images, prefix="im", **save_kw):
    paths = []
    for i, a in enumerate(images):
        path = tmp_path / f"{prefix}{i}.png"
        Image.fromarray(a.squeeze()).save(path, **save_kw)
        paths.append(str(path))
    return paths


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, images, targets=None):
        self.images = images
        if targets is not None:
            self.targets = list(targets)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return (self.images[i], 0) if hasattr(self, "targets") else self.images[i]


def test_every_format_predicts_as_the_float_array(rgb, tmp_path):
    images, y = rgb
    before = images.copy()
    reference = CNNClassifier(**FAST).fit(_float(images), y)
    expected = reference.predict_proba(_float(images))
    paths = _write(tmp_path, images)
    formats = {
        "uint8 channels-last": images,
        "uint8 channels-first": images.transpose(0, 3, 1, 2),
        "uint16": images.astype(np.uint16) * 257,  # 255 * 257 = 65535
        "float channels-last": images.astype(np.float32) / 255,
        "list of arrays": list(images),
        "list of PIL images": [Image.fromarray(a) for a in images],
        "file paths": paths,
        "1-D array of paths": np.array(paths),
        "torch Dataset": _ListDataset([torch.from_numpy(a).permute(2, 0, 1)
                                       for a in images]),
    }
    for name, X in formats.items():
        est = CNNClassifier(**FAST).fit(X, y)
        assert est.input_shape_ == (3, 8, 8), name
        np.testing.assert_allclose(est.predict_proba(X), expected, atol=1e-5,
                                   err_msg=name)
        # a model fitted on one format predicts on any other
        np.testing.assert_allclose(reference.predict_proba(X), expected, atol=1e-5,
                                   err_msg=name)
    np.testing.assert_array_equal(images, before)  # the caller's data untouched
    # the DataLoader's workers read the same images
    est = CNNClassifier(**FAST, num_workers=2).fit(paths, y)
    np.testing.assert_allclose(est.predict_proba(paths), expected, atol=1e-5)


def test_dataset_of_pairs_gives_y_and_grey_stays_one_channel(rgb):
    images, y = rgb
    grey = images[..., 0]
    ds = _ListDataset([Image.fromarray(a) for a in grey], targets=y)
    est = CNNClassifier(**FAST).fit(ds, None)
    assert est.input_shape_ == (1, 8, 8)
    assert est.preprocessing_["channels"] == 1
    ref = CNNClassifier(**FAST).fit(grey, y)
    np.testing.assert_allclose(est.predict_proba(ds), ref.predict_proba(grey), atol=1e-5)
    with pytest.raises(ValueError, match="requires y.*no `targets`"):
        CNNClassifier(**FAST).fit(_ListDataset(list(grey)), None)


def test_uint16_arrays_are_scaled_by_65535():
    rng = np.random.RandomState(0)
    X16 = rng.randint(0, 65536, size=(40, 1, 6, 6)).astype(np.uint16)
    y = rng.randn(40)
    as_float = X16.astype(np.float32) / 65535
    for X, F in ((X16, as_float), (X16.reshape(40, -1), as_float.reshape(40, -1))):
        a = CNNRegressor(**FAST).fit(X, y).predict(X)
        b = CNNRegressor(**FAST).fit(F, y).predict(F)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_files_of_different_sizes(tmp_path):
    rng = np.random.RandomState(0)
    sizes = [(10, 14), (16, 12), (12, 12), (20, 9)] * 3
    images = [rng.randint(0, 256, size=s + (3,)).astype(np.uint8) for s in sizes]
    y = np.array([0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1])
    paths = _write(tmp_path, images)
    with pytest.raises(ValueError, match=r"different sizes.*set input_size"):
        CNNClassifier(**FAST).fit(paths, y)
    est = CNNClassifier(**FAST, input_size=8).fit(paths, y)
    assert est.input_shape_ == (3, 8, 8)
    assert est.preprocessing_ == {"input_size": (8, 8), "resize": 8,
                                  "interpolation": "bilinear", "crop_mode": "center",
                                  "channels": 3}
    proba = est.predict_proba(paths)
    assert proba.shape == (len(paths), 2)
    # the same preprocessing for in-memory images of any size, and arrays
    np.testing.assert_allclose(est.predict_proba(images), proba, atol=1e-6)
    same = np.stack([images[2]] * 2)  # 12 x 12: resized to 8 too
    np.testing.assert_allclose(est.predict_proba(same), proba[[2, 2]], atol=1e-6)
    # a pickled model keeps its preprocessing (and its augmentation)
    est.set_params(augment="standard").fit(paths, y)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.preprocessing_ == est.preprocessing_
    np.testing.assert_array_equal(loaded.predict_proba(paths), est.predict_proba(paths))
    # fitted at their own size, images of another size are refused by name
    est = CNNClassifier(**FAST).fit(paths[2::4], y[2::4])
    assert est.preprocessing_["input_size"] is None
    with pytest.raises(ValueError, match=r"im0\.png' is 10 x 14 pixels.*12 x 12"):
        est.predict(paths[:1])


def test_pretrained_backbone_uses_its_weights_preprocessing(tmp_path):
    pytest.importorskip("timm")
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 256, size=s + (3,)).astype(np.uint8)
              for s in [(40, 30), (30, 50), (36, 36), (50, 40)]]
    paths = _write(tmp_path, images)
    y = [0, 1, 0, 1]
    est = CNNClassifier("efficientnet_lite0", weights=None, max_epochs=1, batch_size=4,
                        random_state=0, device="cpu", lr_schedule=None)
    est.fit(paths, y)
    # timm's eval recipe for tf_efficientnet_lite0: 224 crops of 256 (crop_pct
    # 0.875), bicubic, centre crop
    assert est.preprocessing_ == {"input_size": (224, 224), "resize": 256,
                                  "interpolation": "bicubic", "crop_mode": "center",
                                  "channels": 3}
    assert est.input_shape_ == (3, 224, 224)
    est.set_params(input_size=32).fit(paths, y)
    assert est.preprocessing_["input_size"] == (32, 32)
    assert est.preprocessing_["resize"] == round(32 * 256 / 224)
    assert est.predict(paths).shape == (4,)


class _Recorder:
    """An augmentation that counts the images it sees and leaves them as they are."""

    def __init__(self):
        self.calls = []

    def __call__(self, x):
        self.calls.append(tuple(x.shape))
        return x


def test_augmentation_in_training_only_and_seeded(rgb):
    images, y = rgb
    recorder = _Recorder()
    est = CNNClassifier(**{**FAST, "max_epochs": 3}, augment=recorder,
                        early_stopping=True, validation_fraction=0.25)
    est.fit(images, y)
    # 45 training images (15 held out for validation) x 3 epochs, one at a time
    assert recorder.calls == [(3, 8, 8)] * (45 * 3)
    est.predict(images)
    assert len(recorder.calls) == 45 * 3
    plain = CNNClassifier(**FAST).fit(images, y).predict_proba(images)
    runs = [CNNClassifier(**{**FAST, "random_state": seed}, augment="standard")
            .fit(images, y).predict_proba(images) for seed in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    assert not np.allclose(runs[0], plain)
    for preset in ("flip", "crop", "trivialaugment"):
        proba = CNNClassifier(**FAST, augment=preset).fit(images, y).predict_proba(images)
        assert not np.allclose(proba, plain), preset
    # streamed images are augmented the same way as in-memory ones
    streamed = CNNClassifier(**FAST, augment="standard").fit(list(images), y)
    np.testing.assert_allclose(streamed.predict_proba(images), runs[0], atol=1e-5)


def test_augment_is_a_grid_searchable_parameter(rgb):
    from torchvision.transforms import v2

    images, y = rgb
    search = GridSearchCV(CNNClassifier(**{**FAST, "max_epochs": 1}),
                          {"augment": [None, "flip", v2.RandomHorizontalFlip()]}, cv=2)
    search.fit(images, y)
    assert len(search.cv_results_["params"]) == 3
    with pytest.raises(ValueError, match="augment"):
        CNNClassifier(**FAST, augment="rotate").fit(images, y)
    with pytest.raises(ValueError, match=r"shape it was given, \(3, 8, 8\); got \(3, 6, 6\)"):
        CNNClassifier(**FAST, augment=v2.RandomCrop(6)).fit(images, y)


def test_tta_averages_the_flipped_views(rgb):
    images, y = rgb
    X = _float(images)
    clf = CNNClassifier(**FAST, tta="flip").fit(X, y)
    with_tta = clf.predict_proba(X)
    clf.set_params(tta=None)
    expected = (clf.predict_proba(X) + clf.predict_proba(X[..., ::-1].copy())) / 2
    np.testing.assert_allclose(with_tta, expected, atol=1e-6)
    clf.set_params(tta="flip")
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[with_tta.argmax(1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), with_tta, atol=1e-6)
    target = images.mean(axis=(1, 2, 3))
    reg = CNNRegressor(**FAST, tta="flip").fit(X, target)
    with_tta = reg.predict(X)
    reg.set_params(tta=None)
    np.testing.assert_allclose(
        with_tta, (reg.predict(X) + reg.predict(X[..., ::-1].copy())) / 2, rtol=1e-5)


def test_16bit_exif_and_rgba_files(tmp_path):
    # 16-bit grey PNG: read as uint16, not clipped to 255
    rng = np.random.RandomState(0)
    deep = rng.randint(0, 65536, size=(12, 8, 8)).astype(np.uint16)
    paths16 = []
    for i, a in enumerate(deep):
        path = tmp_path / f"deep{i}.png"
        Image.fromarray(a).save(path)
        paths16.append(str(path))
    read = read_image(paths16[0])
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read, deep[0])
    y = np.arange(12) % 2
    from_files = CNNClassifier(**FAST).fit(paths16, y).predict_proba(paths16)
    from_array = CNNClassifier(**FAST).fit(deep, y).predict_proba(deep)
    np.testing.assert_allclose(from_files, from_array, atol=1e-5)

    # EXIF orientation 6 (turn 90 degrees clockwise to display), as phones write it
    photo = rng.randint(0, 256, size=(4, 6, 3)).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.png"
    Image.fromarray(photo).save(path, exif=exif)
    np.testing.assert_array_equal(read_image(path), np.rot90(photo, k=-1))
    assert image_header(path) == (6, 4, 3)

    # RGBA files keep their 4 channels; mixed with RGB they are read as RGB
    rgba = rng.randint(0, 256, size=(6, 8, 8, 4)).astype(np.uint8)
    paths = _write(tmp_path, rgba, prefix="rgba")
    est = CNNClassifier(**FAST).fit(paths, y[:6])
    assert est.input_shape_ == (4, 8, 8)
    np.testing.assert_allclose(est.predict_proba(paths),
                               est.predict_proba(rgba), atol=1e-6)
    mixed = paths[:3] + _write(tmp_path, rgba[3:, ..., :3], prefix="rgb")
    est = CNNClassifier(**FAST).fit(mixed, y[:6])
    assert est.input_shape_ == (3, 8, 8)
    np.testing.assert_allclose(est.predict_proba(mixed),
                               est.predict_proba(rgba[..., :3]), atol=1e-6)


def test_rgba_pretrained_keeps_colour_statistics(tmp_path):
    rng = np.random.RandomState(0)
    rgba = rng.randint(0, 256, size=(4, 16, 16, 4)).astype(np.uint8)
    est = CNNClassifier("resnet18", weights=None, max_epochs=1, batch_size=4,
                        random_state=0, device="cpu").fit(rgba, [0, 1, 0, 1])
    mean = est.module_.normalize.mean.flatten().tolist()
    std = est.module_.normalize.std.flatten().tolist()
    imagenet_mean, imagenet_std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    np.testing.assert_allclose(mean, imagenet_mean + imagenet_mean[:1], rtol=1e-6)
    np.testing.assert_allclose(std, imagenet_std + imagenet_std[:1], rtol=1e-6)
    assert est.module_.backbone.conv1.in_channels == 4


def test_bad_files_are_named(tmp_path, rgb):
    images, y = rgb
    paths = _write(tmp_path, images[:8])
    y = y[:8]
    missing = str(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"missing\.png"):
        CNNClassifier(**FAST).fit(paths[:7] + [missing], y)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"garbage\.png"):
        CNNClassifier(**FAST).fit(paths[:7] + [str(garbage)], y)
    # a header that reads but pixel data that do not: found while training,
    # in the training process or in a DataLoader worker
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(open(paths[0], "rb").read()[:100])
    assert image_header(truncated) == (8, 8, 3)
    for workers in (0, 1):
        with pytest.raises(ValueError, match=r"truncated\.png"):
            CNNClassifier(**FAST, num_workers=workers).fit(
                paths[:7] + [str(truncated)], y)
    with pytest.raises(TypeError, match="only image arrays.*or only file paths"):
        CNNClassifier(**FAST).fit(paths[:4] + list(images[:4]), y)


def test_data_format_is_honoured(rgb):
    images, y = rgb
    first = images.transpose(0, 3, 1, 2)  # (n, 3, 8, 8)
    est = CNNClassifier(**FAST, data_format="channels_first").fit(first, y)
    assert est.input_shape_ == (3, 8, 8)
    # a 4-channel-wide last axis read as channels by 'channels_last'
    est = CNNClassifier(**FAST, data_format="channels_last").fit(first, y)
    assert est.input_shape_ == (8, 3, 8)
    assert clone(est).get_params()["data_format"] == "channels_last"


class _ViewNet(torch.nn.Module):
    """A user's module that reads its input with ``.view`` (needs contiguous input)."""

    def __init__(self, in_channels, n_outputs, input_size):
        super().__init__()
        self.fc = torch.nn.Linear(in_channels * input_size[0] * input_size[1], n_outputs)

    def forward(self, x):
        return self.fc(x.view(len(x), -1))


def test_channels_last_batches_suit_every_network(rgb):
    images, y = rgb
    # built-in networks get channels-last batches (faster convolutions), a
    # user's module contiguous ones; both predict as on the float array
    for arch in ("convnet", _ViewNet):
        kw = {k: v for k, v in FAST.items() if k != "architecture"}
        if arch != "convnet":
            kw = {k: v for k, v in kw.items() if k not in ("channels", "hidden_units")}
        est = CNNClassifier(arch, **kw).fit(images, y)
        ref = CNNClassifier(arch, **kw).fit(_float(images), y)
        np.testing.assert_allclose(est.predict_proba(images),
                                   ref.predict_proba(_float(images)), atol=1e-5)


class _Layouts(Callback):
    """Records whether each training batch is channels-last in memory."""

    def __init__(self):
        self.seen = []

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        self.seen.append(_channels_last(batch[0]))


def _channels_last(x):
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _view_builder(*, in_channels, n_outputs, input_size):
    return _ViewNet(in_channels, n_outputs, input_size)


def test_channels_last_uint8_batches_keep_their_layout(rgb, monkeypatch):
    from skcnn.models import _registry

    images, y = rgb
    # A builder a user registers by name may call .view on its input, as a
    # module class may: both get contiguous batches, skcnn's own networks
    # the permuted batch as it is (faster; what a hand-written loop's
    # x.permute(0, 3, 1, 2).float() gives, hence the same weights).
    monkeypatch.setitem(_registry._MODELS[2], "user_view_net", _view_builder)
    plain = {k: v for k, v in FAST.items() if k not in ("channels", "hidden_units")}
    for arch, kw, expected in [("convnet", FAST, True), (_ViewNet, plain, False),
                               ("user_view_net", plain, False)]:
        layouts = _Layouts()
        est = CNNClassifier(arch, **kw, callbacks=[layouts]).fit(images, y)
        assert layouts.seen and set(layouts.seen) == {expected}, arch
        predicted = []
        est.module_.register_forward_pre_hook(
            lambda m, args, seen=predicted: seen.append(_channels_last(args[0])))
        proba = est.predict_proba(images)
        assert predicted and set(predicted) == {expected}, arch
        # one image alone is predicted as within the set, bit for bit
        np.testing.assert_array_equal(est.predict_proba(images[5:6]), proba[5:6])


def test_uint8_arrays_are_not_copied_to_float(rgb, monkeypatch):
    import skcnn._base as base

    images, y = rgb
    seen = []
    make = base._make_dataset

    def spy(X, y_tensor, lengths, weight=None):
        seen.append(make(X, y_tensor, lengths, weight))
        return seen[-1]

    monkeypatch.setattr(base, "_make_dataset", spy)
    est = CNNClassifier(**FAST).fit(images, y)
    est.predict(images)
    for dataset in seen:  # fit's and predict's: the caller's uint8 memory itself
        assert dataset.X.dtype == torch.uint8
        assert dataset.X.data_ptr() == images.ctypes.data


@pytest.mark.parametrize("io_bound", [False, True])
def test_headers_are_read_in_order_by_threads(tmp_path, monkeypatch, io_bound):
    import threading

    import skcnn._image_data as image_data

    # chunks of 4 files; local files (CPU-bound) are read in the calling
    # thread, files that made the first chunk wait (forced here) by threads:
    # sizes come back in the files' order either way, and of two bad files
    # the first in that order is named
    monkeypatch.setattr(image_data, "_HEADER_CHUNK", 4)
    monkeypatch.setattr(image_data, "_HEADER_IO_BOUND", -1.0 if io_bound else 1e9)
    readers = set()
    header = image_data.image_header

    def spy(path):
        readers.add(threading.get_ident())
        return header(path)

    monkeypatch.setattr(image_data, "image_header", spy)
    rng = np.random.default_rng(0)
    shapes = [(int(rng.integers(3, 20)), int(rng.integers(3, 20))) for _ in range(30)]
    paths = _write(tmp_path, [np.zeros(s + (3,), np.uint8) for s in shapes])
    sizes, channels = image_data.scan("paths", paths, "auto")
    assert sizes == shapes and channels == [3] * 30
    others = readers - {threading.get_ident()}
    assert (len(others) > 0) == io_bound
    bad = list(paths)
    bad[21] = str(tmp_path / "missing.png")
    (tmp_path / "garbage.png").write_bytes(b"no image")
    bad[9] = str(tmp_path / "garbage.png")
    with pytest.raises(ValueError, match=r"garbage\.png"):
        image_data.scan("paths", bad, "auto")
