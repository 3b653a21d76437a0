"""skcnn._base.BaseCNN: details the estimator tests do not pin down.

Written for the mutants of ``_base.py`` that survived the sampled mutation
run of 2026-12-02 (tests/MUTATION.md).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from skcnn import CNNClassifier, Conv1DClassifier

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


def test_predict_checks_the_feature_names_and_count_of_flat_rows(small_digits):
    X, y = small_digits
    flat = pd.DataFrame(X.reshape(len(X), -1), columns=[f"p{i}" for i in range(64)])
    clf = CNNClassifier(input_shape=(8, 8), **{**FAST, "max_epochs": 1}).fit(flat, y)
    assert list(clf.feature_names_in_) == list(flat.columns)
    with pytest.raises(ValueError, match="The feature names should match those that were "
                                         "passed during fit"):
        clf.predict(flat.rename(columns={"p0": "q0"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names, but "
                                         "CNNClassifier was fitted with feature names"):
        clf.predict(flat.to_numpy()[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(flat[:3])
    with warnings.catch_warnings(), pytest.raises(
            ValueError, match=r"^X has 65 features, but CNNClassifier is expecting 64 "
                              r"features as input\.$"):
        warnings.simplefilter("ignore", UserWarning)  # no feature names
        clf.predict(np.zeros((2, 65)))


@pytest.mark.parametrize("cls, X, shown", [
    (Conv1DClassifier, np.zeros((4, 1, 0)), r"\(1, 0\) \(channels, length\)"),
    (CNNClassifier, np.zeros((4, 1, 0, 5)), r"\(1, 0, 5\) \(channels, height, width\)"),
])
def test_empty_samples_are_refused_naming_their_axes(cls, X, shown):
    with pytest.raises(ValueError, match=rf"^{cls.__name__} expects samples with at least "
                                         rf"one channel and one value along each axis; got "
                                         rf"samples of shape {shown}\.$"):
        cls(max_epochs=1).fit(X, [0, 1, 0, 1])


def test_images_of_another_shape_are_refused_naming_both_shapes(small_digits):
    X, y = small_digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, y)
    with pytest.raises(ValueError, match=r"^X has per-sample shape \(1, 9, 9\) \(channels, "
                                         r"height, width\), but CNNClassifier was fitted on "
                                         r"samples of shape \(1, 8, 8\)\.$"):
        clf.predict(np.zeros((2, 9, 9)))


def test_an_epoch_is_split_into_batches_of_nearly_equal_size(small_digits):
    X, y = small_digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 1, "batch_size": 64}).fit(X[:150], y[:150])
    # 150 samples at batch_size=64: 3 batches of 50, not 64, 64 and 22.
    assert [b["train_batch_size"] for b in clf.history_[0]["batches"]] == [50, 50, 50]


def test_partial_fit_takes_string_labels_and_names_itself_without_y(small_digits):
    X, y = small_digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                      "eight", "nine"], dtype=object)
    labels = names[y]
    clf = CNNClassifier(**FAST)
    clf.partial_fit(X[:150], labels[:150], classes=names)
    clf.partial_fit(X[150:], labels[150:])
    assert set(clf.predict(X[:20])) <= set(names)
    with pytest.raises(ValueError, match=r"^CNNClassifier\.partial_fit requires y to be an "
                                         r"array-like; got None\.$"):
        clf.partial_fit(X[:10], None)


def test_a_pretrained_backbone_names_the_module_arguments_it_refuses(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"^architecture='resnet18' is a pretrained "
                                         r"backbone; the knobs and module__ arguments "
                                         r"\['depth', 'dropout'\] apply to the built-in "
                                         r"architectures only\.$"):
        CNNClassifier("resnet18", weights=None, dropout=0.2, module__depth=3,
                      max_epochs=1).fit(X, y)
