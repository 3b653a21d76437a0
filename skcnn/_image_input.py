"""Image formats, sizes, augmentation and TTA for the 2-D estimators.

:class:`_ImageMixin` overrides :meth:`BaseCNN._prepare` for
``CNNClassifier`` and ``CNNRegressor``. ``X`` takes one of three routes:

- **fast**: float ``(n, C, H, W)`` and ``(n, H, W)`` arrays, flat ``(n, d)``
  arrays and DataFrames go through :meth:`BaseCNN._validate_X` exactly as
  before (one float32 array, batches as tensor slices);
- **raw**: uint8/uint16 arrays and channels-last ``(n, H, W, C)`` arrays of
  one size stay as they are in memory; each batch is converted to float
  ``(n, C, H, W)`` in [0, 1] on its device
  (:class:`skcnn._data.ArrayDataset` with ``scale``/``channels_last``);
- **stream**: file paths, lists of images (arrays or PIL images, any
  sizes), a torch ``Dataset`` of images, and any array when ``input_size``
  asks for resizing, are read one image at a time by
  :class:`skcnn._image_data.ImageDataset` in ``num_workers`` background
  processes, resized and centre-cropped as ``preprocessing_`` says.

Every route gives the network the same float tensor for the same pixels.
"""

import numbers

import numpy as np
import torch
from sklearn.utils.validation import (
    check_array,
    check_consistent_length,
    column_or_1d,
    validate_data,
)

from . import models
from ._augment_images import AUGMENT_PRESETS, TTA_OPTIONS, ImageAugmentation
from ._backbones import backbone_meta
from ._base import _warn_if_channels_last
from ._compat import Interval, StrOptions
from ._data import ArrayDataset, as_tensor
from ._image_data import ImageSource, common_channels, scan
from ._images import classify_input, image_channel_axis, preprocessing_config

__all__ = ["IMAGE_CONSTRAINTS"]

IMAGE_CONSTRAINTS = {
    "data_format": [StrOptions({"auto", "channels_last", "channels_first"})],
    "input_size": [None, Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
    "augment": [None, StrOptions(set(AUGMENT_PRESETS)), callable],
    "tta": [None, StrOptions(set(TTA_OPTIONS))],
    "num_workers": [Interval(numbers.Integral, 0, None, closed="left")],
}

_SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class _RawImages:
    """An in-memory image array read per batch (the raw route).

    ``keep_strides``: give the network channels-last batches in
    channels-last memory format (see :class:`skcnn._data.ArrayDataset`).
    """

    def __init__(self, array, scale, channels_last, keep_strides=False):
        self.array = array
        self.scale = scale
        self.channels_last = channels_last
        self.keep_strides = keep_strides

    def __len__(self):
        return len(self.array)

    def __getitem__(self, keep):
        """The images of the rows ``keep`` (a boolean mask or indices; a copy)."""
        return _RawImages(self.array[keep], self.scale, self.channels_last,
                          self.keep_strides)

    def make_dataset(self, y=None, weight=None):
        return ArrayDataset(as_tensor(self.array), y, weight=weight, scale=self.scale,
                            channels_last=self.channels_last,
                            keep_strides=self.keep_strides)

    def stack(self):
        """All the images as the network sees them: float ``(n, C, H, W)``, a copy."""
        dataset = self.make_dataset()
        Xb, _ = dataset.batch(slice(None))
        return dataset.finish(Xb).contiguous().clone()


class _ImageMixin:
    """Image formats, ``input_size``, ``augment`` and ``tta`` for the 2-D estimators.

    Put it before the task base class. The estimator must have the
    parameters ``data_format``, ``input_size``, ``augment``, ``tta`` and
    ``num_workers``.
    """

    def _prepare(self, X, y=None, *, reset):
        route, kind, data = self._route(X, reset=reset)
        if route == "fast":
            X, lengths, y = super()._prepare(X, y, reset=reset)
            if reset:
                self.preprocessing_ = _no_resize(self.input_shape_[0])
            return X, lengths, y
        if route == "raw":
            return self._prepare_raw(data, y, reset=reset)
        return self._prepare_stream(kind, data, y, reset=reset)

    # -- routes -----------------------------------------------------------
    def _route(self, X, *, reset):
        """``(route, kind, data)`` for ``X``; see the module docstring."""
        resizing = (self.input_size is not None if reset
                    else self.preprocessing_["input_size"] is not None)
        if isinstance(X, torch.utils.data.Dataset):
            return "stream", "dataset", X
        if isinstance(X, (list, tuple)) or (
                isinstance(X, np.ndarray) and X.ndim == 1 and X.dtype.kind in "OUS"
        ) or (hasattr(X, "to_numpy") and getattr(X, "ndim", 2) == 1):
            kind, data = classify_input(X)
            if kind in ("paths", "list"):
                return "stream", kind, data
            X = data
        if not (isinstance(X, np.ndarray) and X.ndim in (3, 4)
                and X.dtype.kind in "uifb"):
            return "fast", None, X
        if X.ndim == 4:
            axis = image_channel_axis(X.shape, self.data_format, "X", batch=True)
        else:
            axis = None
        if resizing:
            fmt = "channels_last" if axis == 3 else "channels_first"
            return "stream", "array", (X, fmt)
        if X.dtype in _SCALES or axis == 3:
            return "raw", None, (X, axis)
        return "fast", None, X

    def _prepare_raw(self, data, y, *, reset):
        X, axis = data
        if reset:
            X, y = validate_data(self, X, y, allow_nd=True, dtype=None,
                                 **self._y_validation_kwargs())
            if axis != 3:
                _warn_if_channels_last(X, 2, type(self).__name__, stacklevel=5)
        else:
            X = check_array(X, allow_nd=True, dtype=None)
        if X.ndim == 3:
            X = X[:, None]  # grey: a view with one channel
        channels_last = axis == 3
        c, h, w = ((X.shape[3], X.shape[1], X.shape[2]) if channels_last
                   else X.shape[1:])
        if min(h, w, c) < 1:
            raise ValueError(f"X has shape {X.shape}: images must not be empty.")
        self._set_or_check_shape((c, h, w), reset=reset)
        if reset:
            self.preprocessing_ = _no_resize(c)
        raw = _RawImages(X, _SCALES.get(X.dtype), channels_last,
                         keep_strides=_takes_any_strides(self.architecture))
        return raw, None, y

    def _prepare_stream(self, kind, data, y, *, reset):
        name = type(self).__name__
        fmt = self.data_format
        if kind == "array":
            data, fmt = data
            if min(data.shape[1:]) < 1:
                raise ValueError(f"X has shape {data.shape}: images must not be empty.")
        sizes, counts = scan(kind, data, fmt)
        if reset:
            for attr in ("n_features_in_", "feature_names_in_"):
                if hasattr(self, attr):
                    delattr(self, attr)
            channels = common_channels(counts)
            config = self._size_config(sizes)
            size = config["input_size"] or sizes[0]
            self.preprocessing_ = {**config, "channels": channels}
            self._set_or_check_shape((channels,) + tuple(size), reset=True)
            y = self._check_stream_y(kind, data, y)
        else:
            config = self.preprocessing_
            channels = config["channels"]
            size = self.input_shape_[1:]
            if config["input_size"] is None and kind != "dataset":
                for i, s in enumerate(sizes):
                    if tuple(s) != tuple(size):
                        what = (f"Image file {data[i]!r}" if kind == "paths"
                                else f"Image {i}")
                        raise ValueError(
                            f"{what} is {s[0]} x {s[1]} pixels, but {name} was "
                            f"fitted on images of {size[0]} x {size[1]}. Fit with "
                            "input_size=(height, width) to resize and centre-crop "
                            "images of any size to it."
                        )
        source = ImageSource(kind, data, fmt, config, channels, size, self.num_workers)
        return source, None, y

    def _set_or_check_shape(self, shape, *, reset):
        shape = tuple(int(s) for s in shape)
        if reset:
            self.input_shape_ = shape
            self.n_features_in_ = int(np.prod(shape))
        elif shape != tuple(self.input_shape_):
            raise ValueError(
                f"X has images of shape {shape} (channels, height, width), but "
                f"{type(self).__name__} was fitted on images of shape "
                f"{tuple(self.input_shape_)}."
            )

    def _size_config(self, sizes):
        """Resize and crop for images of these ``sizes`` (fit)."""
        arch = self.architecture
        pretrained = isinstance(arch, str) and arch not in models.list_models(2)
        if self.input_size is not None:
            meta = backbone_meta(arch, self.weights) if pretrained else {}
            config = preprocessing_config(meta, input_size=self.input_size)
        elif len(set(map(tuple, sizes))) == 1:
            return _no_resize(None)
        elif pretrained:
            config = preprocessing_config(backbone_meta(arch, self.weights))
        else:
            hs, ws = zip(*sizes)
            raise ValueError(
                f"The images have different sizes (heights {min(hs)} to "
                f"{max(hs)}, widths {min(ws)} to {max(ws)}) and "
                f"architecture={arch!r} takes one size; set input_size="
                "(height, width) (or an int for squares) to resize each image's "
                "shorter side to it and centre-crop."
            )
        return {k: config[k] for k in ("input_size", "resize", "interpolation",
                                       "crop_mode")}

    def _check_stream_y(self, kind, data, y):
        name = type(self).__name__
        if y is None and kind == "dataset" and hasattr(data, "targets"):
            y = np.asarray(data.targets)
        if y is None:
            raise ValueError(
                f"{name} requires y to be passed, but the target y is None"
                + (" and the Dataset has no `targets` attribute." if kind == "dataset"
                   else ".")
            )
        kw = self._y_validation_kwargs()
        if kw.get("multi_output"):
            y = check_array(y, ensure_2d=False, dtype=np.float64 if kw.get("y_numeric")
                            else None, input_name="y")
        else:
            y = column_or_1d(y, warn=True)
        check_consistent_length(np.empty((len(data), 0)), y)
        return y

    # -- training and prediction hooks ------------------------------------
    def _batch_transform(self):
        return ImageAugmentation.from_param(self.augment, self.input_shape_[1:])

    def _tta_views(self):
        from ._augment_images import tta_views

        return tta_views(self.tta)


def _takes_any_strides(architecture):
    """Whether the network of ``architecture`` takes inputs of any memory layout.

    skcnn's own architectures and the torchvision/timm backbones do: a
    channels-last batch is given to them as it is (an ``(n, C, H, W)`` view
    of the ``(n, H, W, C)`` images, channels varying fastest in memory, as a
    hand-written loop's ``x.permute(0, 3, 1, 2).float()`` is), on which
    oneDNN's and cuDNN's convolutions, pooling and batch norm run faster. A
    user's module (a class, or a builder registered by the user) may call
    ``.view`` on its input and gets contiguous batches.
    """
    if not isinstance(architecture, str):
        return False
    if architecture not in models.list_models(2):
        return True  # a torchvision/timm backbone
    builder = models.get_model_builder(architecture, ndim=2)
    return getattr(builder, "__module__", "").startswith("skcnn.")


def _no_resize(channels):
    config = {"input_size": None, "resize": None, "interpolation": "bilinear",
              "crop_mode": "center"}
    if channels is not None:
        config["channels"] = int(channels)
    return config
