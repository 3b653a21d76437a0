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
import warnings
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
        tuple, 'std': tuple, 'interpolation': str, 'crop_mode': str}``, the
        argument of :func:`preprocess`. ``crop_mode`` is timm's:
        ``'center'`` (resize the shorter side, centre-crop), ``'squash'``
        (resize both sides, ignoring the aspect ratio, then crop) or
        ``'border'`` (fit the longer side, pad with zeros).
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
        "crop_mode": meta.get("crop_mode", "center"),
    }


def _resize_crop(x, config):
    resize, size = config["resize"], config["input_size"]
    mode = config.get("crop_mode", "center")
    if resize is not None:
        if size is not None and mode == "squash":
            target = [round(resize * s / min(size)) for s in size]
        elif size is not None and mode == "border":
            h, w = x.shape[-2:]
            scale = min(resize * size[0] / min(size) / h, resize * size[1] / min(size) / w)
            target = [max(1, round(h * scale)), max(1, round(w * scale))]
        else:
            target = [resize]
        x = TF.resize(x, target,
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
    """One image of a list, as a float tensor (3, H, W) (the extractor's RGB)."""
    if not isinstance(image, np.ndarray):  # a PIL image
        image = pil_to_array(image)
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]  # the extractor feeds RGB: drop alpha
    what = f"Image {index}"
    if image.ndim not in (2, 3):
        raise ValueError(f"{what} has {image.ndim} dimensions; expected (H, W[, C]).")
    image = check_array(image, allow_nd=True, dtype="numeric", input_name=what)
    _check_float32_range(image, what)
    axis = _channel_axis(image.shape, data_format, what, batch=False)
    return _to_tensor(image, axis, batch=False)


def image_channel_axis(shape, data_format, what, *, batch):
    """Axis of the channels (any number of them) for the estimators; None: grey.

    ``'auto'`` reads 4-D batches (3-D images) as channels-first unless the
    last axis has 1, 3 or 4 entries and the first (channel) axis does not,
    so ``(n, C, H, W)`` arrays keep their meaning and ``(n, H, W, 3)`` or
    RGBA ``(n, H, W, 4)`` ones are read channels-last.
    """
    first = 1 if batch else 0
    if len(shape) == first + 2:
        return None
    if len(shape) != first + 3:
        raise ValueError(
            f"{what} has shape {tuple(shape)}; expected "
            f"{'(n, H, W), (n, C, H, W) or (n, H, W, C)' if batch else '(H, W), (C, H, W) or (H, W, C)'}."
        )
    last = len(shape) - 1
    if data_format == "channels_last":
        return last
    if data_format == "channels_first":
        return first
    colour = (1, 3, 4)
    if shape[last] in colour and shape[first] not in colour:
        return last
    return first


def image_tensor(image, data_format, what):
    """One image (array, PIL image or tensor) as a float tensor ``(C, H, W)`` in [0, 1].

    The channels are kept as they are (grey stays one channel, RGBA four);
    uint8 values are divided by 255 and uint16 ones by 65535.
    """
    if torch.is_tensor(image):
        image = image.detach().cpu().numpy()
    elif not isinstance(image, np.ndarray):
        if type(image).__module__.startswith("PIL."):
            image = pil_to_array(image)
        else:
            raise TypeError(
                f"{what} is a {type(image).__name__}; expected an image array, "
                "a PIL image or a tensor."
            )
    if image.ndim not in (2, 3):
        raise ValueError(f"{what} has shape {image.shape}; expected (H, W[, C]) or (C, H, W).")
    if image.dtype.kind not in "uifb":
        raise ValueError(f"{what} has dtype {image.dtype}; expected numbers.")
    if min(image.shape) < 1:
        raise ValueError(f"{what} has shape {image.shape}: images must not be empty.")
    axis = image_channel_axis(image.shape, data_format, what, batch=False)
    if image.dtype == np.uint8:
        # The usual case (decoded files): one copy, converting and moving
        # the channels at once; the division is the one _scale does, in
        # float32 (the same values, bit for bit).
        with warnings.catch_warnings():
            # A decoded image is read-only; it is only read here.
            warnings.filterwarnings("ignore", message=".*not writable.*")
            x = torch.from_numpy(image)
        x = _channels_first(x, axis)
        return x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)
    x = _channels_first(torch.from_numpy(_scale(image)), axis)
    return x.contiguous()


def _channels_first(x, axis):
    """A view ``(C, H, W)`` of an image whose channels are on ``axis`` (None: grey)."""
    if axis is None:
        return x.unsqueeze(0)
    if axis != 0:
        return x.movedim(axis, 0)
    return x


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
        return [_rgb_tensor(a) for a in arrays]


def _rgb_tensor(array):
    """A decoded file as the extractor's float RGB tensor (3, H, W)."""
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]  # drop alpha
    return _to_tensor(array, None if array.ndim == 2 else 2, batch=False)


# PIL modes read as they are (grey, 16-bit grey, RGB, RGBA); others are
# converted first.
_ORIENTATION = 0x0112  # the EXIF tag

_PIL_KEEP = {"L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F", "RGB", "RGBA"}
_PIL_CONVERT = {"1": "L", "LA": "L", "La": "L", "P": "RGB", "PA": "RGBA",
                "RGBX": "RGB", "RGBa": "RGBA", "CMYK": "RGB", "YCbCr": "RGB",
                "LAB": "RGB", "HSV": "RGB"}


def pil_to_array(image):
    """A PIL image as an array ``(H, W)`` or ``(H, W, C)``, without losing range.

    EXIF orientation is applied (phone photos are stored sideways with a tag
    saying how to turn them). 16-bit grey images (modes ``I;16`` and ``I``,
    as PNG and TIFF files give them) become uint16 arrays, which are scaled
    by 65535, rather than being clipped to 255 by ``convert('RGB')``; 8-bit
    grey stays one channel, RGBA keeps its alpha channel; palette, CMYK and
    other modes are converted to RGB (RGBA for a palette with transparency).
    """
    from PIL import ImageOps

    image.load()
    if image.getexif().get(_ORIENTATION, 1) in range(2, 9):
        # exif_transpose returns a copy of every image, turned or not: only
        # for those it turns.
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode not in _PIL_KEEP:
        image = image.convert(_PIL_CONVERT.get(mode, "RGB"))
    array = np.asarray(image)
    if image.mode == "I":  # 32-bit integers: 16-bit data in practice
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(
                f"32-bit integer image with values from {array.min()} to "
                f"{array.max()}; only 16-bit ranges (0 to 65535) are supported."
            )
        array = array.astype(np.uint16)
    elif array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def read_image(path):
    """Decode the image file ``path`` with PIL into an array (see :func:`pil_to_array`).

    Raises
    ------
    ValueError
        The file is missing or cannot be decoded; the message names it.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return pil_to_array(image)
    except Exception as exc:
        raise ValueError(
            f"Could not read the image file {os.fspath(path)!r} "
            f"({type(exc).__name__}: {exc})."
        ) from None


def image_header(path):
    """``(height, width, channels)`` of an image file, from its header only.

    Raises
    ------
    ValueError
        The file is missing or not an image PIL knows; the message names it.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
            mode = image.mode
            orientation = _orientation(image)
            transparent = "transparency" in image.info
    except Exception as exc:
        raise ValueError(
            f"Could not read the image file {os.fspath(path)!r} "
            f"({type(exc).__name__}: {exc})."
        ) from None
    if orientation in (5, 6, 7, 8):  # EXIF: a quarter turn
        height, width = width, height
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and transparent):
        channels = 4
    elif mode in ("L", "1", "LA", "La", "I", "F") or mode.startswith("I;16"):
        channels = 1
    else:
        channels = 3
    return height, width, channels


def _orientation(image):
    """EXIF orientation tag of an opened image, without decoding its pixels.

    PIL's ``PngImageFile.getexif`` decodes the whole image when the EXIF
    chunk is not before the pixel data; read only what the header gave.
    """
    from PIL import Image

    if image.format == "PNG":
        raw = image.info.get("exif")
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(_ORIENTATION, 1)
    return image.getexif().get(_ORIENTATION, 1)
