"""Bad input gets a clear ValueError/TypeError naming expected and received."""

import ast
import warnings

import numpy as np
import pytest
import torch

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier
from skcnn._backbones import load_backbone

from .conftest import FAST


@pytest.fixture
def fitted(small_digits):
    X, y = small_digits
    return CNNClassifier(**FAST).fit(X, y)


def test_wrong_ndim(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"expects at most 4-D input.*shape \(300, 1, 1, 8, 8\)"):
        CNNClassifier(**FAST).fit(X[:, None, None], y)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        CNNClassifier(**FAST).fit(X[:, 0, 0], y)
    with pytest.raises(ValueError, match=r"Conv1DClassifier expects at most 3-D input; got .* \(300, 1, 8, 8\)"):
        Conv1DClassifier(**FAST).fit(X[:, None], y)


def test_channels_last_images_get_a_warning_that_says_how_to_fix_them():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (6, 12, 10, 3), dtype=np.uint8)
    y = np.arange(6) % 2
    kwargs = dict(channels=(4,), hidden_units=(), max_epochs=1, random_state=0)
    # data_format='channels_first' forces the (n, C, H, W) reading: warned
    for X_ in (X, X / 255.0):
        with pytest.warns(UserWarning, match=(
                r"shape \(6, 12, 10, 3\), which looks like channels-last images "
                r"\(n_samples, height, width, channels\); CNNRegressor reads 4-D "
                r"arrays as \(n_samples, channels, height, width\), here 12 "
                r"channels of 10 x 3 pixels\. Set data_format='auto'")):
            CNNRegressor(**kwargs, data_format="channels_first").fit(X_, y.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the default data_format='auto' reads them channels-last
        assert CNNRegressor(**kwargs).fit(X, y.astype(float)).input_shape_ == (3, 12, 10)
        clf = CNNClassifier(**kwargs).fit(X.transpose(0, 3, 1, 2), y)
        assert clf.input_shape_ == (3, 12, 10)
        clf.predict(X.transpose(0, 3, 1, 2))
        CNNClassifier(**kwargs).fit(X[..., :1].transpose(0, 3, 1, 2), y)


def test_shape_mismatch_between_fit_and_predict(fitted, small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match=r"per-sample shape \(3, 8, 8\).*fitted on samples of shape \(1, 8, 8\)"):
        fitted.predict(np.repeat(X[:, None], 3, axis=1))
    with pytest.raises(ValueError, match=r"per-sample shape \(1, 8, 9\)"):
        fitted.predict(np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match="X has 63 features, but CNNClassifier is expecting 64"):
        fitted.predict(np.zeros((2, 63)))


@pytest.mark.parametrize("bad,match", [
    (np.nan, "Input X contains NaN"),
    (np.inf, "Input X contains infinity"),
])
def test_nan_and_inf(small_digits, bad, match):
    X, y = small_digits
    X = X.copy()
    X[3, 2, 2] = bad
    with pytest.raises(ValueError, match=match):
        CNNClassifier(**FAST).fit(X, y)


def test_empty_and_single_sample(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="0 sample"):
        CNNClassifier(**FAST).fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="at least 2 samples.*n_samples=1"):
        CNNRegressor(**FAST).fit(X[:1], [1.0])


def test_single_class(small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="at least 2 classes; got 1 class"):
        CNNClassifier(**FAST).fit(X, np.full(len(X), "a"))


def test_non_numeric_X():
    with pytest.raises(ValueError, match="could not convert string to float"):
        CNNClassifier(**FAST).fit([["a", "b"], ["c", "d"]], [0, 1])


def test_continuous_y_to_classifier(small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        CNNClassifier(**FAST).fit(X, np.linspace(0, 1, len(X)))


def test_sparse_input(small_digits):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = small_digits
    with pytest.raises(TypeError, match="dense data is required"):
        CNNClassifier(**FAST).fit(sparse.csr_matrix(X.reshape(len(X), -1)), y)


@pytest.mark.parametrize("params,match", [
    ({"lr": -1}, r"The 'lr' parameter of CNNClassifier must be a float in the range \(0.0, inf\)\. Got -1"),
    ({"activation": "mish"}, "The 'activation' parameter of CNNClassifier must be"),
    ({"optimizer": "adamax"}, "The 'optimizer' parameter of CNNClassifier must be"),
    ({"pooling": "median"}, "The 'pooling' parameter"),
    ({"lr_schedule": "step"}, "The 'lr_schedule' parameter"),
])
def test_invalid_parameters_fail_in_fit(small_digits, params, match):
    X, y = small_digits
    clf = CNNClassifier(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_unknown_architecture_and_unused_knob(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"Unknown image \(2-D\) architecture 'resnet9'.*'convnet'"):
        CNNClassifier("resnet9", max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"architecture='resnet' does not use \['pooling'\]"):
        CNNClassifier("resnet", pooling="avg", max_epochs=1).fit(X, y)


@pytest.mark.parametrize("estimator, name, match", [
    (CNNClassifier, "lenet", r"architecture 'lenet'\. Did you mean 'lenet5'\?"),
    (Conv1DClassifier, "inception",
     r"architecture 'inception'\. Did you mean 'inceptiontime'\?"),
])
def test_misspelled_architecture_suggests_the_registered_one(estimator, name, match):
    X = np.random.RandomState(0).rand(4, 1, 12, 12).astype(np.float32)
    if estimator is Conv1DClassifier:
        X = X[:, :, 0]
    with pytest.raises(ValueError, match=match):
        estimator(name, max_epochs=1).fit(X, [0, 1, 0, 1])


def test_unknown_backbone_suggestions_are_distinct():
    with pytest.raises(ValueError, match="Did you mean") as info:
        load_backbone("lenet", None)
    close = ast.literal_eval(str(info.value).split("Did you mean ")[1].split("?")[0])
    assert close and len(close) == len(set(close))


def test_misspelled_keyword_suggests_the_parameter(small_digits):
    X, y = small_digits
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        CNNClassifier(learning_rate=0.1).fit(X, y)
    with pytest.raises(TypeError, match="Did you mean 'max_epochs'"):
        CNNClassifier(max_epoch=3).fit(X, y)


def test_module_that_cannot_take_the_data(small_digits):
    X, y = small_digits

    class Broken(torch.nn.Module):
        def __init__(self, n_classes):
            super().__init__()
            self.lin = torch.nn.LazyLinear(n_classes)

        def forward(self, x):
            return self.lin(x.reshape(3, -1))  # wrong on purpose

    with pytest.raises(ValueError, match=r"network failed on an input of per-sample shape \(1, 8, 8\)"):
        CNNClassifier(Broken, max_epochs=1).fit(X, y)


def test_backbone_on_too_small_images_says_to_resize():
    # torchvision's inception_v3 needs at least 75 x 75 pixels.
    X = np.zeros((4, 3, 32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match=r"per-sample shape \(3, 32, 32\): .*"
                                         r"'inception_v3' may need larger images: "
                                         r"pass input_size=\(height, width\)"):
        CNNClassifier("inception_v3", max_epochs=1).fit(X, [0, 1, 0, 1])


def test_bad_class_weight(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="class_weight must be None, 'balanced'"):
        CNNClassifier(class_weight="auto", **FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"one weight per class \(10\); got shape \(3,\)"):
        CNNClassifier(class_weight=[1, 2, 3], **FAST).fit(X, y)


def test_cuda_requested_without_cuda(small_digits):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = small_digits
    with pytest.raises(ValueError, match="CUDA is not available"):
        CNNClassifier(device="cuda", **FAST).fit(X, y)


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        CNNClassifier().predict(np.zeros((2, 8, 8)))
    with pytest.raises(NotFittedError):
        _ = CNNClassifier().module_
