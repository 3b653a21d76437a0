"""skcnn._base.BaseCNN: details the estimator tests do not pin down.

Written for the mutants of ``_base.py`` that survived the sampled mutation
run of 2026-12-02 (tests/MUTATION.md).
"""

import pytest

from skcnn import CNNClassifier

from .conftest import FAST


@pytest.mark.parametrize("input_shape, batch_size, expected", [
    ((1, 8, 8), 64, 256),           # small samples: max(batch_size, 256)
    ((1, 8, 8), 512, 512),
    ((3, 224, 224), 64, 16),        # 2**22 values at most on the CPU
    ((3, 1024, 1024), 64, 8),       # never below 8
    ((3, 4096, 4096), 64, 8),
])
def test_prediction_batch_size(small_digits, input_shape, batch_size, expected):
    X, y = small_digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 1, "batch_size": batch_size}).fit(X, y)
    clf.input_shape_ = input_shape
    assert clf._predict_batch_size() == expected
