"""skcnn.plotting: the displays draw what they hold (Agg backend)."""

import numpy as np
import pytest

from skcnn import CNNClassifier, Conv1DClassifier, Conv1DRegressor
from skcnn.inspection import saliency
from skcnn.plotting import (
    AttributionDisplay,
    EmbeddingDisplay,
    FiltersDisplay,
    HistoryDisplay,
)

mpl = pytest.importorskip("matplotlib")
mpl.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits_clf(digits_module):
    X, y = digits_module
    return CNNClassifier(channels=(4, 8), hidden_units=(16,), max_epochs=3,
                         early_stopping=True, random_state=0).fit(X, y), X, y


@pytest.fixture(scope="module")
def digits_module():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:200] / 16.0).reshape(-1, 8, 8).astype(np.float32), y[:200]


@pytest.fixture(scope="module")
def series_clf():
    rng = np.random.RandomState(0)
    X = rng.normal(0, 0.1, (40, 32)).astype(np.float32)
    y = np.repeat([0, 1], 20)
    X[y == 1, 10:16] += 1
    return Conv1DClassifier("fcn", channels=(4, 4, 4), max_epochs=2,
                            random_state=0).fit(X, y), X, y


def test_history_display(digits_clf):
    clf = digits_clf[0]
    display = HistoryDisplay.from_estimator(clf)
    assert display.axes_.shape == (3,)  # loss, valid_acc, learning rate
    assert set(display.lines_) == {"train_loss", "valid_loss", "valid_score", "lr"}
    np.testing.assert_array_equal(display.lines_["train_loss"].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(display.lines_["valid_score"].get_ydata(),
                               clf.history_[:, "valid_acc"])
    assert len(display.ax_.get_lines()) == 2
    # one-cycle schedule, read from the batches: the rate rises then falls
    lr = display.lines_["lr"].get_ydata()
    assert lr.max() > lr[-1] and np.all(lr > 0)
    # into the caller's axes; a single Axes gets the losses only
    fig, ax = plt.subplots()
    display = HistoryDisplay.from_estimator(clf, ax=ax)
    assert display.ax_ is ax and display.figure_ is fig
    assert len(ax.get_lines()) == 2 and set(display.lines_) == {"train_loss",
                                                                 "valid_loss"}


def test_history_without_validation():
    display = HistoryDisplay([1, 2], [0.5, 0.3], lr=[1e-3, 1e-3]).plot()
    assert display.axes_.shape == (2,)
    assert len(display.ax_.get_lines()) == 1


def test_attribution_display_images(digits_clf):
    pytest.importorskip("captum")
    clf, X, _ = digits_clf
    display = AttributionDisplay.from_estimator(clf, X[:3],
                                                methods=("grad_cam", "saliency"))
    assert display.axes_.shape == (3, 3)  # samples x (input + 2 methods)
    # one image per input, two (grey input + map) per method panel
    assert len(display.images_) == 3 * (1 + 2 * 2)
    assert all(len(ax.get_images()) == 2 for ax in display.axes_[:, 1:].ravel())
    assert display.axes_[0, 0].get_title().startswith("predicted ")
    np.testing.assert_array_equal(display.axes_[1, 2].get_images()[1].get_array(),
                                  display.attributions["saliency"][1])
    with pytest.raises(ValueError, match="methods must be among"):
        AttributionDisplay.from_estimator(clf, X[:2], methods=("lime",))


def test_attribution_display_series(series_clf):
    pytest.importorskip("captum")
    clf, X, _ = series_clf
    display = AttributionDisplay.from_estimator(
        clf, [X[0], X[1, :20]], methods=("grad_cam", "occlusion", "guided_backprop"))
    assert display.axes_.shape == (2, 3)
    assert len(display.collections_) == 6
    assert display.axes_[0, 2].get_title().startswith("guided backprop")
    np.testing.assert_array_equal(
        display.attributions["guided_backprop"],
        saliency(clf, [X[0], X[1, :20]], method="guided_backprop"))
    # the shorter series is drawn without its padding
    assert len(display.axes_[1, 0].collections[0].get_offsets()) == 20
    assert len(display.axes_[0, 0].get_lines()) == 1


def test_filters_display(digits_clf, series_clf):
    display = FiltersDisplay.from_estimator(digits_clf[0])
    assert len(display.images_) == 4  # 4 filters of the first convolution
    np.testing.assert_allclose(display.images_[2].get_array(),
                               display.filters[2, 0])
    display = FiltersDisplay.from_estimator(series_clf[0], max_filters=3)
    assert len(display.lines_) == 3 and display.axes_.size == 3
    np.testing.assert_array_equal(display.lines_[1].get_ydata(),
                                  display.filters[1, 0])


def test_embedding_display(digits_clf):
    clf, X, y = digits_clf
    display = EmbeddingDisplay.from_estimator(clf, X[:60], y[:60], method="pca")
    assert len(display.scatters_) == len(np.unique(y[:60]))
    assert sum(len(s.get_offsets()) for s in display.scatters_) == 60
    assert display.embedding.shape == (60, 2)
    tsne = EmbeddingDisplay.from_estimator(clf, X[:40], method="tsne", random_state=0)
    assert len(tsne.scatters_) == 1 and tsne.ax_.get_xlabel() == "t-SNE 1"
    reg = Conv1DRegressor("fcn", channels=(4, 4, 4), max_epochs=1, random_state=0)
    reg.fit(np.random.RandomState(0).rand(20, 16), np.arange(20.0))
    assert EmbeddingDisplay.from_estimator(reg, np.zeros((5, 16)), method="pca"
                                           ).embedding.shape == (5, 2)
