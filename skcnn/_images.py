"""Images in, batches out: every image format the estimators accept.

Parsing (arrays channels-first or channels-last, grey, uint8/uint16/float,
lists of images of different sizes, PIL images, file paths) and the
preprocessing of pretrained weights (resize, centre crop, normalisation)
live here, shared by :class:`~skcnn.PretrainedFeatureExtractor` and the
image estimators.

- :func:`to_unit_range`: integer images to [0, 1] (uint8 / 255, uint16 / 65535).
- :func:`normalize`: ``(x - mean) / std`` per channel.
- :func:`preprocessing_config` and :func:`preprocess`: resize, crop and
  normalise as a backbone's weights expect.
- :func:`classify_input` and :class:`Images`: validate ``X`` and read it in
  batches of float tensors.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import check_array
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

# Fallback only: used when a backbone carries no preprocessing metadata of its
# own (a user's nn.Module). Weights loaded by name always use their metadata.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Largest value of each integer image type: it maps to 1.0.
_INTEGER_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_unit_range(values, dtype):
    """Scale float ``values`` read from an integer image of ``dtype`` to [0, 1].

    Parameters
    ----------
    values : ndarray of float32
        The image values, already converted to float (so a new array when
        ``dtype`` is an integer type); divided in place.
    dtype : numpy dtype
        The original dtype: uint8 values are divided by 255, uint16 values
        by 65535; other dtypes are left as they are.

    Returns
    -------
    values : ndarray
        The same array.
    """
    top = _INTEGER_RANGES.get(np.dtype(dtype)) if dtype is not None else None
    if top is not None:
        values /= np.float32(top)
    return values


def normalize(x, mean, std):
    """``(x - mean) / std`` per channel of a batch ``(n, C, H, W)`` or image ``(C, H, W)``.

    ``mean`` and ``std`` are sequences of one value per channel, or tensors
    that broadcast (such as buffers of shape ``(1, C, 1, 1)``). ``x`` is not
    modified.
    """
    if not torch.is_tensor(mean):
        mean = torch.tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    if not torch.is_tensor(std):
        std = torch.tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x - mean) / std


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------

def size_pair(value, name):
    """``(h, w)`` from an int or a pair; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair (h, w); got {value!r}.") from None
    if h < 1 or w < 1:
        raise ValueError(f"{name} must be positive; got {value!r}.")
    return h, w


def check_channel_stats(values, name):
    try:
        values = tuple(float(v) for v in np.asarray(values, dtype=float).reshape(-1))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers; got {values!r}.") from None
    if len(values) not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 values (one per channel); got {values}.")
    if name == "std" and min(values) <= 0:
        raise ValueError(f"std must be positive; got {values}.")
    return values if len(values) == 3 else values * 3


def preprocessing_config(meta, *, input_size=None, resize=None, mean=None, std=None):
    """The resize, crop and normalisation to apply, from metadata and overrides.

    Parameters
    ----------
    meta : dict
        Metadata from :func:`skcnn._backbones.load_backbone`.
    input_size : int or (int, int), default=None
        Size of the centre crop that the network sees. ``None``: the
        metadata's ``crop_size``; without metadata, images are fed at their
        own size.
    resize : int, default=None
        Length of the shorter side after resizing, before the centre crop.
        ``None``: the metadata's ``resize_size``, scaled by
        ``input_size / crop_size`` when ``input_size`` is overridden (so 224
        crops of 256 become 64 crops of 73); ``input_size`` itself without
        metadata. Set ``resize`` equal to ``input_size`` to keep the whole
        shorter side.
    mean, std : sequence of float, default=None
        Per-channel normalisation ``(x - mean) / std`` of images in [0, 1].
        ``None``: the metadata's, else the ImageNet constants
        :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD` (the documented
        fallback for modules without metadata).

    Returns
    -------
    config : dict
        ``{'input_size': (h, w) or None, 'resize': int or None, 'mean':
        tuple, 'std': tuple, 'interpolation': str}``, the argument of
        :func:`preprocess`.
    """
    crop = meta.get("crop_size")
    meta_resize = meta.get("resize_size")
    if input_size is not None:
        size = size_pair(input_size, "input_size")
        if resize is None:
            resize = (round(min(size) * meta_resize / min(crop))
                      if crop and meta_resize else min(size))
    else:
        size = None if crop is None else size_pair(crop, "crop_size")
        if resize is None:
            resize = meta_resize
    if resize is not None:
        resize = int(resize)
        if resize < 1:
            raise ValueError(f"resize must be a positive int; got {resize!r}.")
    return {
        "input_size": size,
        "resize": resize,
        "mean": check_channel_stats(meta.get("mean", IMAGENET_MEAN) if mean is None else mean, "mean"),
        "std": check_channel_stats(meta.get("std", IMAGENET_STD) if std is None else std, "std"),
        "interpolation": meta.get("interpolation", "bilinear"),
    }


def _resize_crop(x, config):
    if config["resize"] is not None:
        x = TF.resize(x, [config["resize"]],
                      interpolation=InterpolationMode(config["interpolation"]),
                      antialias=True)
    if config["input_size"] is not None:
        x = TF.center_crop(x, list(config["input_size"]))
    return x


def preprocess(images, config):
    """Resize, centre-crop and normalise images, as ``Weights.transforms()`` does.

    Parameters
    ----------
    images : Tensor of shape (n, 3, H, W) or list of Tensors of shape (3, H, W)
        Float images with values in [0, 1]. A list may mix sizes.
    config : dict
        From :func:`preprocessing_config`.

    Returns
    -------
    batch : Tensor of shape (n, 3, h, w)
        A new tensor; the inputs are not modified.

    Raises
    ------
    ValueError
        Images of different sizes when ``config`` has no ``input_size`` to
        bring them to.
    """
    if isinstance(images, (list, tuple)):
        if len({tuple(im.shape) for im in images}) == 1:
            x = _resize_crop(torch.stack(list(images)), config)
        else:
            resized = [_resize_crop(im, config) for im in images]
            if len({tuple(im.shape) for im in resized}) != 1:
                raise ValueError(
                    "The images have different sizes and this backbone has no "
                    "input size to resize them to; set input_size."
                )
            x = torch.stack(resized)
    else:
        x = _resize_crop(images, config)
    return normalize(x, config["mean"], config["std"])


# --------------------------------------------------------------------------
# Input formats
# --------------------------------------------------------------------------

def is_path_item(item):
    """Whether one item of ``X`` is a file path (a str or path object)."""
    return isinstance(item, (str, os.PathLike))


def _is_image(item):
    if isinstance(item, np.ndarray) and item.ndim >= 2:
        return True
    return type(item).__module__.startswith("PIL.")


def classify_input(X):
    """Return ``(kind, data)``: kind is 'paths', 'list', 'array' or 'flat'."""
    if is_path_item(X):
        raise ValueError(
            f"X is a single path {X!r}; pass a list of image file paths, e.g. [X]."
        )
    if hasattr(X, "iloc") or hasattr(X, "tocsr") or hasattr(X, "to_numpy"):
        if getattr(X, "ndim", 2) == 1:  # a pandas Series
            X = X.to_numpy()
        else:
            return "flat", X  # DataFrame or sparse matrix: validate_data decides
    if isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype == object
                                        and X.ndim == 1):
        if len(X) == 0:
            raise ValueError("X is empty: found 0 images.")
        if all(is_path_item(item) for item in X):
            return "paths", [os.fspath(item) for item in X]
        if all(_is_image(item) for item in X):
            return "list", list(X)
        if any(_is_image(item) or is_path_item(item) for item in X):
            raise TypeError(
                "A list X must hold only image arrays (or PIL images) or only "
                "file paths; got a mix of "
                f"{sorted({type(item).__name__ for item in X})}."
            )
    ndim = getattr(X, "ndim", None)
    if ndim is None:
        try:
            X = np.asarray(X)
        except ValueError as exc:  # a ragged nested list
            raise ValueError(
                "X must be images of one shape (n, H, W[, C]), a flat 2-D array, "
                "or a list of images or file paths; got a ragged nested "
                f"sequence: {exc}"
            ) from None
        ndim = X.ndim
    if ndim == 2:
        return "flat", X
    if ndim == 1:
        arr = np.asarray(X)
        if arr.dtype.kind in "US":
            return "paths", [str(item) for item in arr]
        raise ValueError(
            f"X is 1-D ({arr.shape[0]} values). Expected images (n, H, W[, C]), "
            "a flat 2-D array (n, d) or a list of image file paths. Reshape your "
            "data with X.reshape(1, -1) if it is a single flat sample."
        )
    if ndim in (3, 4):
        return "array", X
    raise ValueError(
        f"X has {ndim} dimensions; expected images (n, H, W), (n, H, W, C) or "
        "(n, C, H, W), a flat 2-D array, or a list of images or file paths."
    )


def _channel_axis(shape, data_format, what, *, batch):
    """Axis of the channels in a batch (or one image) of ``shape``; None for grey."""
    first = 1 if batch else 0
    if len(shape) == first + 2:
        return None
    if data_format == "channels_last":
        axis = len(shape) - 1
    elif data_format == "channels_first":
        axis = first
    elif shape[-1] in (1, 3):
        axis = len(shape) - 1
    elif shape[first] in (1, 3):
        axis = first
    else:
        axis = None
    if axis is None or shape[axis] not in (1, 3):
        raise ValueError(
            f"{what} has shape {tuple(shape)}: could not find a channel axis of 1 "
            "(grey) or 3 (RGB) entries, last (H, W, C) or first (C, H, W). "
            "Drop an alpha channel with X[..., :3], or set data_format."
        )
    return axis


def check_image(image, data_format, index):
    """One image of a list, as a float tensor (3, H, W)."""
    if not isinstance(image, np.ndarray):  # a PIL image
        image = np.asarray(image.convert("RGB"))
    what = f"Image {index}"
    if image.ndim not in (2, 3):
        raise ValueError(f"{what} has {image.ndim} dimensions; expected (H, W[, C]).")
    image = check_array(image, allow_nd=True, dtype="numeric", input_name=what)
    _check_float32_range(image, what)
    axis = _channel_axis(image.shape, data_format, what, batch=False)
    return _to_tensor(image, axis, batch=False)


def _check_float32_range(array, what):
    """Refuse values that float32, the networks' dtype, turns into infinity."""
    if array.dtype.kind == "f" and array.dtype.itemsize > 4 and array.size:
        big = np.abs(array).max()
        if big > np.finfo(np.float32).max:
            raise ValueError(
                f"{what} holds values up to {big:.3g}; image values must be "
                f"within float32's range (|x| < 3.4e38)."
            )


def _scale(array):
    """Float32 copy of ``array`` with values in [0, 1] for integer images."""
    out = np.array(array, dtype=np.float32)  # always a copy
    return to_unit_range(out, array.dtype)


def _to_tensor(array, channel_axis, *, batch):
    """Float tensor (n, 3, H, W) (or (3, H, W) with ``batch=False``) from ``array``."""
    x = torch.from_numpy(_scale(array))
    c = 1 if batch else 0
    if channel_axis is None:
        x = x.unsqueeze(c)
    elif channel_axis != c:
        x = x.movedim(channel_axis, c)
    if x.shape[c] == 1:
        x = x.repeat_interleave(3, dim=c)
    return x.contiguous()


class Images:
    """Validated images that can be read in batches of float tensors in [0, 1]."""

    def __init__(self, *, array=None, channel_axis=None, images=None, paths=None,
                 num_workers=0, flat_rows=False):
        self.array, self.channel_axis = array, channel_axis
        self.images, self.paths = images, paths
        self.num_workers = num_workers
        self.flat_rows = flat_rows
        self.shape = None if array is None else array.shape

    @classmethod
    def from_array(cls, X, data_format, *, flat_rows=False):
        X = check_array(X, allow_nd=True, dtype="numeric", input_name="X")
        if min(X.shape[1:]) < 1:
            raise ValueError(f"X has shape {X.shape}: images must not be empty.")
        _check_float32_range(X, "X")
        axis = _channel_axis(X.shape, data_format, "X", batch=True)
        return cls(array=X, channel_axis=axis, flat_rows=flat_rows)

    def __len__(self):
        for data in (self.array, self.images, self.paths):
            if data is not None:
                return len(data)

    def batches(self, batch_size):
        """Yield a tensor (b, 3, H, W) or a list of tensors (3, H, W) per batch."""
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            if self.array is not None:
                yield _to_tensor(self.array[start:stop], self.channel_axis, batch=True)
            elif self.images is not None:
                yield self.images[start:stop]
            else:
                yield self._read(self.paths[start:stop])

    def _read(self, paths):
        if self.num_workers:
            with ThreadPoolExecutor(self.num_workers) as pool:
                arrays = list(pool.map(read_image, paths))
        else:
            arrays = [read_image(path) for path in paths]
        return [_to_tensor(a, 2, batch=False) for a in arrays]


def read_image(path):
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except Exception as exc:
        raise ValueError(
            f"Could not read the image file {path!r} ({type(exc).__name__}: {exc})."
        ) from None
