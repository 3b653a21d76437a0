"""How arrays become (n, C, *spatial) tensors, and subsets keep their lengths.

Written to kill mutants of ``skcnn/_data.py`` that survived the fast tests
(see ``tests/MUTATION.md``): the default reading of flat rows, the
``input_shape`` rules and their error messages, and the series lengths
that a subset of a subset must keep.
"""

import numpy as np
import pytest
import torch

from skcnn._data import ArrayDataset, BatchIterator, default_input_shape, to_canonical


@pytest.mark.parametrize("d, ndim, shape", [
    (64, 2, (1, 8, 8)), (1, 2, (1, 1, 1)), (7, 2, (1, 1, 7)), (12, 2, (1, 1, 12)),
    (64, 1, (1, 64)), (7, 1, (1, 7)),
])
def test_default_input_shape(d, ndim, shape):
    assert default_input_shape(d, ndim) == shape


def test_to_canonical_reads_input_shape():
    X = np.arange(2 * 24, dtype=np.float32).reshape(2, 24)
    assert to_canonical(X, 2, (2, 3, 4), "E").shape == (2, 2, 3, 4)
    assert to_canonical(X, 2, (4, 6), "E").shape == (2, 1, 4, 6)  # one channel
    assert to_canonical(X, 1, (3, 8), "E").shape == (2, 3, 8)
    assert to_canonical(X, 1, (24,), "E").shape == (2, 1, 24)
    np.testing.assert_array_equal(to_canonical(X, 2, (2, 3, 4), "E")[1, 1, 2],
                                  X[1, 12 + 8:12 + 12])
    assert to_canonical(X.reshape(2, 4, 6), 2, None, "E").shape == (2, 1, 4, 6)


@pytest.mark.parametrize("X, ndim, input_shape, match", [
    (np.zeros((2, 24)), 2, (24,), r"input_shape must be \(channels, height, "
     r"width\) or \(height, width\); got \(24,\)\."),
    (np.zeros((2, 24)), 1, (2, 3, 4), r"input_shape must be \(channels, length\) "
     r"or \(length,\); got \(2, 3, 4\)\."),
    (np.zeros((2, 24)), 2, (5, 5), r"input_shape=\(1, 5, 5\) holds 25 values per "
     r"sample, but X has 24 features\."),
    (np.zeros((2, 1, 2, 3, 4)), 2, None, r"E expects X of shape \(n_samples, "
     r"height, width\), \(n_samples, channels, height, width\) or flat "
     r"\(n_samples, n_features\); got an array of shape \(2, 1, 2, 3, 4\)\."),
    (np.zeros((2, 1, 2, 3)), 1, None, r"E expects X of shape \(n_samples, "
     r"length\) or \(n_samples, channels, length\); got an array of shape "
     r"\(2, 1, 2, 3\)\."),
])
def test_to_canonical_error_messages(X, ndim, input_shape, match):
    with pytest.raises(ValueError, match=match):
        to_canonical(X, ndim, input_shape, "E")


def test_a_subset_of_a_subset_keeps_rows_targets_and_lengths():
    X = torch.arange(6.0 * 4).reshape(6, 1, 4)
    y = torch.arange(6) * 10
    lengths = torch.tensor([4, 1, 2, 3, 4, 2])
    sub = ArrayDataset(X, y, lengths).subset([5, 2, 1, 3]).subset([0, 2])
    assert len(sub) == 2
    assert sub.indices.dtype == torch.long
    Xb, yb = sub.batch(torch.tensor([0, 1]))
    assert torch.equal(yb, torch.tensor([50, 10]))
    # Rows 5 and 1 have lengths 2 and 1: the batch is trimmed to 2 steps, masked.
    assert torch.equal(Xb["x"], X[[5, 1], :, :2])
    assert torch.equal(Xb["mask"], torch.tensor([[True, True], [True, False]]))
    Xs, ys = next(iter(BatchIterator(sub, 8, device="cpu")))
    assert torch.equal(Xs["mask"], Xb["mask"]) and torch.equal(ys, yb)


@pytest.mark.parametrize("n, kwargs, sizes", [
    (5, {}, [4, 1]),  # prediction: every row, in full batches
    (5, {"drop_singleton": True}, [4]),
    (9, {"drop_singleton": True}, [4, 4]),
    (5, {"balanced": True}, [3, 2]),
])
def test_batch_iterator_defaults_keep_every_row(n, kwargs, sizes):
    data = ArrayDataset(torch.arange(float(n))[:, None, None])
    it = BatchIterator(data, 4, **kwargs)
    assert it.batch_sizes() == sizes
    assert [len(Xb) for Xb, _ in it] == sizes
