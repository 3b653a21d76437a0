"""Input formats -> tensors, and the fast in-memory batch path.

skorch's default data path fetches one sample at a time through
``Dataset.__getitem__`` and collates them in a ``DataLoader``; for small
CNNs that costs as much as the network itself. When the data are in
memory, :class:`ArrayDataset` keeps them as tensors built once per ``fit``
and :class:`BatchIterator` yields batches as slices (or one gather per
batch when shuffling), so an epoch costs what a hand-written loop costs.
Anything else (a torch ``Dataset``, file paths) goes through skorch's
``DataLoader`` machinery unchanged.
"""

import math
import warnings

import numpy as np
import torch


def as_tensor(array):
    """Share memory with a numpy array where possible (never writes to it)."""
    with warnings.catch_warnings():
        # Read-only arrays (memmaps) are fine: nothing writes to them.
        warnings.filterwarnings("ignore", message=".*not writable.*")
        return torch.from_numpy(np.ascontiguousarray(array))


def default_input_shape(n_features, ndim):
    """How a flat ``(n, d)`` array is read when ``input_shape`` is None.

    Images (``ndim=2``): a square one-channel image when ``d`` is a perfect
    square (``d=64`` -> ``(1, 8, 8)``, flattened digits), else a ``(1, 1, d)``
    strip. Signals (``ndim=1``): one channel of length ``d``.
    """
    if ndim == 1:
        return (1, n_features)
    side = math.isqrt(n_features)
    if side * side == n_features:
        return (1, side, side)
    return (1, 1, n_features)


def to_canonical(X, ndim, input_shape, name):
    """Reshape a validated float array to ``(n, C, *spatial)``.

    Parameters
    ----------
    X : ndarray
        Validated array with 2, ``ndim + 1`` or ``ndim + 2`` axes.
    ndim : {1, 2}
        Spatial dimensions the network takes.
    input_shape : tuple of int or None
        Per-sample shape for flat ``(n, d)`` input: ``(C, *spatial)`` or
        ``spatial`` alone (one channel).
    name : str
        Estimator name, for error messages.
    """
    n = X.shape[0]
    if X.ndim == 2:
        if input_shape is None:
            shape = default_input_shape(X.shape[1], ndim)
        else:
            shape = tuple(int(s) for s in input_shape)
            if len(shape) == ndim:
                shape = (1,) + shape
            if len(shape) != ndim + 1:
                raise ValueError(
                    f"input_shape must be (channels, {'length' if ndim == 1 else 'height, width'})"
                    f" or {'(length,)' if ndim == 1 else '(height, width)'}; got {input_shape!r}."
                )
        if math.prod(shape) != X.shape[1]:
            raise ValueError(
                f"input_shape={tuple(shape)} holds {math.prod(shape)} values per "
                f"sample, but X has {X.shape[1]} features."
            )
        return X.reshape((n,) + shape)
    if X.ndim == ndim + 1:
        return X[:, None]
    if X.ndim == ndim + 2:
        return X
    expected = ("(n_samples, length) or (n_samples, channels, length)" if ndim == 1
                else "(n_samples, height, width), (n_samples, channels, height, "
                "width) or flat (n_samples, n_features)")
    raise ValueError(f"{name} expects X of shape {expected}; got an array of "
                     f"shape {X.shape}.")


class ArrayDataset(torch.utils.data.Dataset):
    """In-memory samples as tensors, optionally restricted to a subset.

    A subset shares the tensors of its parent (no copy); batches gather the
    rows they need.

    Parameters
    ----------
    X : torch.Tensor
        Inputs, shape ``(n, C, *spatial)``.
    y : torch.Tensor, default=None
        Targets, first axis of length ``n``.
    lengths : torch.Tensor, default=None
        Real length of each series when they were padded to a common length;
        batches then carry a mask and are trimmed to their longest series.
    indices : torch.Tensor, default=None
        Rows of ``X`` that belong to this dataset; ``None`` for all.
    scale : float, default=None
        ``X`` holds integer images (uint8, uint16) kept as they are in
        memory: each batch is converted to float32 and divided by ``scale``
        (255, 65535), on the device it is on. ``None``: ``X`` is float.
    channels_last : bool, default=False
        ``X`` is ``(n, H, W, C)``: each batch is permuted to ``(n, C, H, W)``
        instead of the whole array.
    keep_strides : bool, default=False
        With ``channels_last``, give the network the permuted batch in
        channels-last memory format (the ``(n, C, H, W)`` shape with the
        channels varying fastest), on which oneDNN's and cuDNN's convolutions
        run faster, instead of a contiguous copy; only for networks that
        accept any strides (the built-in and torchvision/timm ones do; a
        user's module may call ``.view`` on its input).
    weight : torch.Tensor, default=None
        Weight of each sample in the loss; batches then carry their targets
        as ``{'y': yb, 'w': wb}`` (see :meth:`skcnn._net._Net.get_loss`).
    """

    def __init__(self, X, y=None, lengths=None, indices=None, weight=None, *,
                 scale=None, channels_last=False, keep_strides=False):
        self.X = X
        self.y = y
        self.lengths = lengths
        self.indices = indices
        self.scale = scale
        self.channels_last = channels_last
        self.keep_strides = keep_strides
        self.weight = weight

    def __len__(self):
        return len(self.X) if self.indices is None else len(self.indices)

    def _like(self, X, y, lengths, indices, weight):
        return ArrayDataset(X, y, lengths, indices, weight, scale=self.scale,
                            channels_last=self.channels_last,
                            keep_strides=self.keep_strides)

    def subset(self, indices):
        """A dataset of the rows ``indices`` (positions in this dataset)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        if self.indices is not None:
            indices = self.indices[indices]
        return self._like(self.X, self.y, self.lengths, indices, self.weight)

    def to(self, device):
        """The same dataset with its tensors moved to ``device`` (once)."""
        def move(t):
            return None if t is None else t.to(device)

        return self._like(move(self.X), move(self.y), move(self.lengths),
                          move(self.indices), move(self.weight))

    def finish(self, Xb):
        """Float ``(n, C, H, W)`` from a raw batch of integer or channels-last images.

        Called by :class:`BatchIterator` after moving the batch to its
        device, so that integer images cross to a GPU at their own size.
        """
        if self.scale is None and not self.channels_last:
            return Xb
        layout = torch.contiguous_format
        if self.channels_last:
            Xb = Xb.permute(0, 3, 1, 2)
            if self.keep_strides:
                layout = torch.channels_last
        Xb = Xb.to(torch.float32, memory_format=layout)
        if self.scale is not None:
            Xb = Xb.div_(self.scale)
        return Xb

    def batch(self, rows):
        """``(Xb, yb)`` for positions ``rows`` (a LongTensor or a slice)."""
        if self.indices is not None:
            rows = self.indices[rows]
        if isinstance(rows, slice):
            def take(t):
                return None if t is None else t[rows]
        else:
            rows = rows.to(self.X.device)

            def take(t):
                return None if t is None else t.index_select(0, rows)
        Xb, yb, lb = take(self.X), take(self.y), take(self.lengths)
        if lb is not None:
            Xb = with_mask(Xb, lb)
        if self.weight is not None and yb is not None:
            yb = {"y": yb, "w": take(self.weight)}
        return Xb, yb

    def __getitem__(self, i):
        # The per-sample protocol skorch's DataLoader path uses.
        Xb, yb = self.batch(torch.as_tensor([i]))
        if not isinstance(Xb, dict):
            Xb = self.finish(Xb)
        if isinstance(Xb, dict):
            Xi = {"x": Xb["x"][0], "mask": Xb["mask"][0]}
        else:
            Xi = Xb[0]
        if isinstance(yb, dict):
            return Xi, {k: v[0] for k, v in yb.items()}
        return Xi, (torch.zeros(0) if yb is None else yb[0])


def with_mask(Xb, lengths):
    """Trim a padded batch to its longest series and attach the mask."""
    longest = int(lengths.max())
    Xb = Xb[..., :longest]
    mask = torch.arange(longest, device=Xb.device)[None, :] < lengths[:, None]
    return {"x": Xb, "mask": mask}


def batch_rows(Xb):
    """Number of samples in a batch (a tensor, or a dict with a masked ``'x'``)."""
    return len(Xb["x"] if isinstance(Xb, dict) else Xb)


def pad_rows(Xb, size):
    """Pad a batch to ``size`` samples by repeating its first sample.

    Prediction runs every batch at one fixed size so that the numerics of a
    sample do not depend on how many samples it is predicted with: CPU
    kernels (oneDNN convolutions, BLAS matrix products) pick other
    algorithms and summation orders for other batch sizes, and float32 sums
    in another order differ in their last bits. Repeating a real sample
    (not zeros) leaves a masked batch's longest length unchanged. A
    channels-last batch stays channels-last in memory (the kernels, hence
    the last bits, depend on the memory layout too).
    """
    if isinstance(Xb, dict):
        return {k: pad_rows(v, size) for k, v in Xb.items()}
    missing = size - len(Xb)
    if missing <= 0:
        return Xb
    padded = torch.cat([Xb, Xb[:1].expand(missing, *Xb.shape[1:])])
    if (Xb.dim() == 4 and not Xb.is_contiguous()
            and Xb.is_contiguous(memory_format=torch.channels_last)):
        padded = padded.contiguous(memory_format=torch.channels_last)
    return padded


def _to_device(value, device, non_blocking):
    if isinstance(value, dict):
        return {k: _to_device(v, device, non_blocking) for k, v in value.items()}
    if value is None or value.device == torch.device(device):
        return value
    if non_blocking:
        value = value.pin_memory()
    return value.to(device, non_blocking=non_blocking)


class BatchIterator:
    """Batches of an :class:`ArrayDataset` as tensor slices.

    Parameters
    ----------
    dataset : ArrayDataset
    batch_size : int
    shuffle : bool, default=False
        Draw a new permutation of the rows every epoch (an index
        permutation: the data are never copied as a whole).
    generator : torch.Generator, default=None
        Source of the permutations, for reproducible shuffling.
    drop_singleton : bool, default=False
        Drop a last batch of a single sample (batch norm cannot train on
        one sample); used in training only.
    balanced : bool, default=False
        Split the ``n`` rows into ``ceil(n / batch_size)`` batches whose
        sizes differ by at most one (36 rows in batches of 16: 12, 12, 12
        rather than 16, 16, 4), so that no small last batch gives batch
        norm noisy statistics and a full-weight gradient step; used in
        training only.
    device : str, default=None
        Move each batch there (non-blocking from pinned memory on CUDA).
    shard : (int, int), default=None
        ``(rank, world_size)`` of a data-parallel fit: this rank takes the
        rows ``rank, rank + world_size, ...`` of the epoch's order (the
        same permutation on every rank, drawn from the same seeded
        generator), the order wrapped around so that every rank gets
        ``ceil(n / world_size)`` rows and runs as many batches.
    group_by_length : bool, default=False
        With shuffling and series of unequal lengths, batch series of
        similar lengths together (:func:`group_by_length`), so that each
        batch is padded less; used in training only.
    """

    def __init__(self, dataset, batch_size, *, shuffle=False, generator=None,
                 drop_singleton=False, balanced=False, device=None, shard=None,
                 group_by_length=False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_singleton = drop_singleton
        self.balanced = balanced
        self.device = device
        self.shard = shard
        self.group_by_length = group_by_length

    def _n_rows(self):
        n = len(self.dataset)
        if self.shard is None:
            return n
        return -(-n // self.shard[1])

    def _order(self):
        """Rows of this pass, in order: a LongTensor, or None for 0..n-1."""
        n = len(self.dataset)
        perm = torch.randperm(n, generator=self.generator) if self.shuffle else None
        if self.shard is None:
            return perm
        rank, world = self.shard
        if perm is None:
            perm = torch.arange(n)
        total = self._n_rows() * world
        if total > n:
            perm = torch.cat([perm, perm[:total - n]] if total - n <= n
                             else [perm] * (-(-total // n)))[:total]
        return perm[rank::world]

    def batch_sizes(self):
        """The size of each batch of one pass, in order."""
        return batch_sizes(self._n_rows(), self.batch_size,
                           balanced=self.balanced, drop_singleton=self.drop_singleton)

    def __len__(self):
        return len(self.batch_sizes())

    def _batches(self):
        """Rows of each batch of this pass: slices or LongTensors."""
        perm = self._order()
        sizes = self.batch_sizes()
        lengths = getattr(self.dataset, "lengths", None)
        if (self.group_by_length and perm is not None and lengths is not None
                and len(sizes) > 1):
            indices = self.dataset.indices
            rows = perm if indices is None else indices[perm]
            return group_by_length(perm, lengths[rows.to(lengths.device)].cpu(),
                                   sizes, self.generator)
        bounds = np.cumsum([0] + sizes).tolist()
        return [slice(a, b) if perm is None else perm[a:b]
                for a, b in zip(bounds[:-1], bounds[1:])]

    def __iter__(self):
        move = self.device is not None and str(self.device) != "cpu"
        non_blocking = move and str(self.device).startswith("cuda")
        finish = getattr(self.dataset, "finish", None)
        if finish is not None and self.dataset.scale is None and not self.dataset.channels_last:
            finish = None  # float channels-first: the batch is ready as it is
        for rows in self._batches():
            Xb, yb = self.dataset.batch(rows)
            if move:
                Xb = _to_device(Xb, self.device, non_blocking)
                yb = _to_device(yb, self.device, non_blocking)
            if finish is not None:
                Xb = finish(Xb)
            yield Xb, yb


# Series are sorted by length within pools of this many batches.
GROUP_POOL_BATCHES = 50


def group_by_length(perm, lengths, sizes, generator):
    """The batches of a pass with series of similar lengths together.

    The shuffled rows ``perm`` are cut into pools of ``GROUP_POOL_BATCHES``
    batches, each pool is sorted by length (``lengths[i]`` is the length of
    ``perm[i]``) and cut into batches of ``sizes``, and the batches are
    shuffled. A batch is trimmed to its longest series: drawn at random, a
    batch of 8 of PLAID's series (lengths 100-1344, mean 324) is padded to
    539 time steps on average; grouped, to about the mean. The same scheme
    as Hugging Face's ``group_by_length`` and torchtext's bucket iterator.

    Parameters
    ----------
    perm : LongTensor
        The pass's shuffled positions.
    lengths : LongTensor
        Length of the series at each position of ``perm``.
    sizes : list of int
        Batch sizes of the pass (they sum to at most ``len(perm)``).
    generator : torch.Generator or None
        Source of the batches' order.

    Returns
    -------
    list of LongTensor
        The positions of each batch, in the order they are trained on.
    """
    pool = GROUP_POOL_BATCHES * max(sizes)
    order = torch.cat([
        chunk[torch.sort(lengths[start:start + pool], descending=True, stable=True)[1]]
        for start, chunk in zip(range(0, len(perm), pool), perm.split(pool))])
    bounds = np.cumsum([0] + list(sizes)).tolist()
    batches = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


def batch_sizes(n, batch_size, *, balanced=False, drop_singleton=False):
    """Sizes of the batches of one pass over ``n`` samples (see :class:`BatchIterator`)."""
    bs = batch_size
    if balanced and n:
        k = -(-n // bs)
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
    else:
        sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    if drop_singleton and len(sizes) > 1 and sizes[-1] == 1 < sizes[0]:
        sizes.pop()
    return sizes


class BatchSampler(torch.utils.data.Sampler):
    """The batches of :class:`BatchIterator` as index lists, for a ``DataLoader``.

    Streamed data (file paths, a torch ``Dataset``) are read by a
    ``DataLoader`` with workers; this sampler gives it the same batches as
    the in-memory path: nearly equal sizes, a permutation per epoch drawn
    from ``generator``, no training batch of a single sample.
    """

    def __init__(self, n, batch_size, *, shuffle=False, generator=None,
                 drop_singleton=False, balanced=False):
        self.n = n
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.drop_singleton = drop_singleton
        self.balanced = balanced

    def _sizes(self):
        return batch_sizes(self.n, self.batch_size, balanced=self.balanced,
                           drop_singleton=self.drop_singleton)

    def __len__(self):
        return len(self._sizes())

    def __iter__(self):
        order = (torch.randperm(self.n, generator=self.generator).tolist()
                 if self.shuffle else list(range(self.n)))
        stop = 0
        for size in self._sizes():
            start, stop = stop, stop + size
            yield order[start:stop]
