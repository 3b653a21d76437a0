"""Streaming image data for the 2-D estimators: files, lists, torch Datasets.

Images that are not one in-memory array (file paths, a list of images of
different sizes, a ``torch.utils.data.Dataset``) and arrays resized to an
``input_size`` are read one image at a time by :class:`ImageDataset` and
batched by a ``DataLoader`` whose ``num_workers`` background processes
decode the next batches while the network trains on this one: memory holds
a few batches, whatever the number of images.

Each image goes through the same steps, so every format gives the network
the same tensor as the equivalent ``(n, C, H, W)`` float array:

1. read: a file with :func:`skcnn._images.read_image` (EXIF orientation,
   16-bit range kept), an array, PIL image or tensor as it is;
2. :func:`skcnn._images.image_tensor`: float ``(C, H, W)`` in [0, 1]
   (uint8 / 255, uint16 / 65535);
3. :func:`match_channels`: the channel count fixed at ``fit`` (grey
   repeated to RGB, alpha dropped from RGBA in a colour collection);
4. resize and centre-crop to the ``preprocessing_`` of the estimator (the
   weights' own for a pretrained backbone), or check the size.
"""

import os
import time
import zlib

import numpy as np
import torch

from ._data import BatchSampler
from ._images import (
    _resize_crop,
    image_channel_axis,
    image_header,
    image_tensor,
    read_image,
)
from ._parallel import restore_heap_in_worker

__all__ = ["ImageDataset", "ImageSource", "match_channels"]


def match_channels(x, channels, what):
    """Bring an image ``(C, H, W)`` to ``channels`` channels, or say why not.

    Grey images in a colour collection are repeated to RGB (3 channels);
    RGBA images in an RGB collection lose their alpha channel. Other
    mismatches raise a ``ValueError`` naming the image.
    """
    c = x.shape[0]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.expand(3, -1, -1)
    if c == 4 and channels == 3:
        return x[:3]
    raise ValueError(
        f"{what} has {c} channel(s), but the images are read with {channels}: "
        "the collection must hold grey (1), RGB (3) or RGBA (4) images, which "
        "are brought to a common count, or images of one channel count."
    )


def common_channels(counts):
    """The channel count of a collection of images with these ``counts``.

    One count: that one. Grey, RGB and RGBA images mixed: RGB (3), the
    usual content of a folder of photos. Anything else raises.
    """
    found = sorted(set(counts))
    if len(found) == 1:
        return found[0]
    if set(found) <= {1, 3, 4}:
        return 3
    raise ValueError(
        f"The images have different numbers of channels {found}; only grey, "
        "RGB and RGBA images can be mixed (they are read as RGB)."
    )


class ImageSource:
    """Validated images and how to read them: the ``X`` of a streamed fit.

    Parameters
    ----------
    kind : {'paths', 'list', 'array', 'dataset'}
    data : list of str, list of images, ndarray or torch Dataset
    data_format : str
        The estimator's ``data_format`` (``'auto'``...), or the axis layout
        resolved for an array.
    config : dict
        Resize and crop, as :func:`skcnn._images.preprocessing_config`
        returns (only ``input_size``, ``resize``, ``interpolation`` and
        ``crop_mode`` are used); ``input_size=None`` means the images are
        taken at their own size, which must be ``size``.
    channels : int
        Channels of every image the network sees.
    size : (int, int)
        Height and width the network sees.
    num_workers : int
        Background processes of the ``DataLoader``.
    """

    def __init__(self, kind, data, data_format, config, channels, size, num_workers=0):
        self.kind = kind
        self.data = data
        self.data_format = data_format
        self.config = config
        self.channels = channels
        self.size = tuple(size)
        self.num_workers = num_workers

    def __len__(self):
        return len(self.data)

    def make_dataset(self, y=None, weight=None):
        return ImageDataset(self, y, weight=weight)

    def stack(self):
        """All the images as the network sees them: float ``(n, C, h, w)``.

        Read one at a time, in this process (for :mod:`skcnn.inspection`).
        """
        return torch.stack([self.tensor(i) for i in range(len(self))])

    def __getitem__(self, keep):
        """The images of the rows ``keep`` (a boolean mask or indices).

        Lists and paths are subset as lists, arrays by indexing (a copy), a
        torch Dataset through ``torch.utils.data.Subset`` (nothing is read).
        """
        rows = np.arange(len(self))[keep].tolist()
        if self.kind == "array":
            data = self.data[rows]
        elif self.kind == "dataset":
            data = torch.utils.data.Subset(self.data, rows)
        else:
            data = [self.data[i] for i in rows]
        return ImageSource(self.kind, data, self.data_format, self.config,
                           self.channels, self.size, self.num_workers)

    def fingerprint(self):
        """CRC-32 of what identifies these images, for ``checkpoint_dir``.

        File paths: each path with its file's size and modification time;
        arrays and lists of images: their pixels. A torch Dataset cannot be
        fingerprinted without reading it all: ``None``.
        """
        crc = zlib.crc32(repr((self.kind, self.data_format, self.channels,
                               self.size, sorted(self.config.items()))).encode())
        if self.kind == "dataset":
            return None
        if self.kind == "paths":
            for path in self.data:
                st = os.stat(path)
                crc = zlib.crc32(f"{os.fspath(path)}|{st.st_size}|{st.st_mtime_ns}\n"
                                 .encode(), crc)
            return crc
        for item in (self.data if self.kind == "list" else [self.data]):
            if type(item).__module__.startswith("PIL."):
                crc = zlib.crc32(f"{item.mode}{item.size}".encode(), crc)
                crc = zlib.crc32(item.tobytes(), crc)
            else:
                array = np.ascontiguousarray(
                    item.detach().cpu().numpy() if torch.is_tensor(item) else item)
                crc = zlib.crc32(f"{array.dtype}{array.shape}".encode(), crc)
                crc = zlib.crc32(memoryview(array).cast("B"), crc)
        return crc

    # -- reading one image ------------------------------------------------
    def describe(self, i):
        """Name of image ``i`` in error messages."""
        if self.kind == "paths":
            return f"Image file {self.data[i]!r}"
        return f"Image {i}"

    def raw(self, i):
        """Image ``i`` as stored: an array, PIL image or tensor."""
        if self.kind == "paths":
            return read_image(self.data[i])
        item = self.data[i]
        if self.kind == "dataset" and isinstance(item, (tuple, list)):
            item = item[0]  # (image, target) pairs, as torchvision datasets give
        return item

    def tensor(self, i):
        """Image ``i`` as the network sees it: float ``(C, h, w)``."""
        what = self.describe(i)
        fmt = self.data_format
        if self.kind == "paths":
            fmt = "channels_last"  # decoded files are (H, W[, C])
        x = image_tensor(self.raw(i), fmt, what)
        x = match_channels(x, self.channels, what)
        if self.config["input_size"] is not None:
            x = _resize_crop(x, self.config)
        if tuple(x.shape[1:]) != self.size:
            raise ValueError(
                f"{what} is {x.shape[1]} x {x.shape[2]} pixels, but the network "
                f"takes {self.size[0]} x {self.size[1]}"
                + (" (the size of the images seen in fit)"
                   if self.config["input_size"] is None else "")
                + ". Set input_size=(height, width) to resize and centre-crop "
                "images of any size to it."
            )
        return x.contiguous()


def scan(kind, data, data_format):
    """``(sizes, channels)`` of each image of a collection, reading as little as possible.

    File paths: from each file's header (a missing or unreadable file
    raises naming it); arrays and PIL images: from their shape; a torch
    Dataset: from its first item only (its items are decoded on demand).
    """
    if kind == "paths":
        heads = read_headers(data)
        return [h[:2] for h in heads], [h[2] for h in heads]
    if kind == "dataset":
        if len(data) == 0:
            raise ValueError("The Dataset X is empty: found 0 images.")
        source = ImageSource(kind, data, data_format, {"input_size": None}, 0, (0, 0))
        x = image_tensor(source.raw(0), data_format, "Image 0 of the Dataset")
        return [tuple(x.shape[1:])], [x.shape[0]]
    sizes, channels = [], []
    for i, item in enumerate(data):
        what = f"Image {i}"
        if type(item).__module__.startswith("PIL."):
            w, h = item.size
            sizes.append((h, w))
            channels.append({"L": 1, "1": 1, "I": 1, "F": 1, "LA": 1,
                             "RGBA": 4, "PA": 4}.get(item.mode,
                                                     1 if item.mode.startswith("I;16") else 3))
            continue
        shape = tuple(np.shape(item))
        axis = image_channel_axis(shape, data_format, what, batch=False)
        if min(shape, default=0) < 1:
            raise ValueError(f"{what} has shape {shape}: images must not be empty.")
        spatial = [s for k, s in enumerate(shape) if k != axis]
        sizes.append(tuple(spatial))
        channels.append(1 if axis is None else shape[axis])
    return sizes, channels


_HEADER_CHUNK = 128
_HEADER_THREADS = 8
# Reading a chunk of headers that waits this many times its CPU time waits
# on the storage: the rest is read by threads.
_HEADER_IO_BOUND = 2.0


def read_headers(paths):
    """:func:`skcnn._images.image_header` of every file, in order.

    The first chunk of files is read in this thread. Files in the page
    cache or on a local disk cost CPU time only (about 60 us each with
    PIL), which threads would not share out (the parsing holds the GIL) and
    would slow down by contending for it (1.3 s for 20 000 files alone,
    1.9-2.4 s with 2-8 threads, measured): the rest is read in the same way.
    When the first chunk waited on its storage for more than twice its CPU
    time (a network file system), the rest is read by a few threads, which
    overlap the waits. The first unreadable file in ``paths``' order
    raises, naming it.
    """
    paths = list(paths)

    def part(chunk):
        return [image_header(path) for path in chunk]

    wall, cpu = time.perf_counter(), time.thread_time()
    heads = part(paths[:_HEADER_CHUNK])
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    rest = paths[_HEADER_CHUNK:]
    if not rest or wall <= _HEADER_IO_BOUND * cpu:
        return heads + part(rest)
    from concurrent.futures import ThreadPoolExecutor

    chunks = [rest[i:i + _HEADER_CHUNK] for i in range(0, len(rest), _HEADER_CHUNK)]
    with ThreadPoolExecutor(min(_HEADER_THREADS, len(chunks))) as pool:
        return heads + [head for part_heads in pool.map(part, chunks)
                        for head in part_heads]


class ImageDataset(torch.utils.data.Dataset):
    """Images of an :class:`ImageSource` (and targets), read one at a time.

    Has the attributes :class:`skcnn._base._HoldOut` uses for the
    validation split (``y``, ``indices``, ``subset``).
    """

    def __init__(self, source, y=None, indices=None, weight=None):
        self.source = source
        self.y = y
        self.indices = indices
        self.weight = weight

    def __len__(self):
        return len(self.source) if self.indices is None else len(self.indices)

    def subset(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.long)
        if self.indices is not None:
            indices = self.indices[indices]
        return ImageDataset(self.source, self.y, indices, self.weight)

    def __getitem__(self, i):
        i = int(i if self.indices is None else self.indices[i])
        x = self.source.tensor(i)
        if self.y is None:
            return x, torch.zeros(0)
        if self.weight is not None:  # collated to {'y': yb, 'w': wb}, as ArrayDataset's
            return x, {"y": self.y[i], "w": self.weight[i]}
        return x, self.y[i]

    def loader(self, batch_size, *, training=False, generator=None, balanced=False,
               pin_memory=False):
        """A ``DataLoader`` giving the batches of :class:`skcnn._data.BatchIterator`."""
        sampler = BatchSampler(len(self), batch_size, shuffle=training,
                               generator=generator, drop_singleton=training,
                               balanced=balanced)
        workers = self.source.num_workers
        # The DataLoader draws its workers' base seed from its generator (the
        # global torch RNG without one): a generator of its own leaves both
        # the shuffling and the caller's RNG alone (workers only decode).
        seeds = torch.Generator()
        seeds.manual_seed(0)
        return torch.utils.data.DataLoader(
            self, batch_sampler=sampler, num_workers=workers,
            pin_memory=pin_memory, generator=seeds,
            prefetch_factor=2 if workers else None,
            worker_init_fn=restore_heap_in_worker if workers else None,
            multiprocessing_context=_mp_context() if workers else None,
        )


def _mp_context():
    """fork where available: workers start fast and share the parent's memory."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return "fork" if "fork" in methods and os.name == "posix" else None
