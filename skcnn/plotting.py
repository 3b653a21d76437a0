"""Plots of fitted estimators, with scikit-learn's Display API.

Each display stores what it shows (``__init__`` computes nothing), draws
it with ``plot(ax=None)`` and is built from a fitted estimator with
``Display.from_estimator(...)``. After ``plot`` it has ``figure_``,
``ax_`` (the first or only axes) and ``axes_`` (all of them, an array),
plus the matplotlib artists it drew.

- :class:`HistoryDisplay`: training and validation loss, validation score
  and learning rate per epoch;
- :class:`AttributionDisplay`: attributions of :mod:`skcnn.inspection`
  over images or series, samples in rows and methods in columns;
- :class:`FiltersDisplay`: the filters of a convolution (the first);
- :class:`EmbeddingDisplay`: a 2-D map (t-SNE or PCA) of the
  penultimate-layer embeddings, coloured by label.

matplotlib is imported when a plot is drawn (``pip install
'skcnn[plot]'``).
"""

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["AttributionDisplay", "EmbeddingDisplay", "FiltersDisplay",
           "HistoryDisplay"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "skcnn.plotting needs matplotlib; install it with pip install "
            "'skcnn[plot]' (or pip install matplotlib)."
        ) from None
    return plt


def _axes_grid(ax, n_rows, n_cols, size=(2.2, 2.2)):
    """``(figure, axes)`` with ``axes`` an (n_rows, n_cols) array."""
    plt = _pyplot()
    if ax is None:
        fig, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                                 figsize=(size[0] * n_cols, size[1] * n_rows))
        return fig, axes
    axes = np.asarray(ax, dtype=object)
    if axes.size != n_rows * n_cols:
        raise ValueError(
            f"ax must hold {n_rows * n_cols} axes ({n_rows} x {n_cols}); got "
            f"{axes.size}."
        )
    axes = axes.reshape(n_rows, n_cols)
    return axes.flat[0].figure, axes


# --------------------------------------------------------------------------
# Training history
# --------------------------------------------------------------------------

class HistoryDisplay:
    """Training history: losses, validation score and learning rate per epoch.

    Parameters
    ----------
    epochs : array-like of int
        Epoch numbers (1-based).
    train_loss : array-like of float
        Mean training loss per epoch.
    valid_loss : array-like of float, default=None
        Validation loss per epoch (with ``early_stopping=True``).
    valid_score : array-like of float, default=None
        Validation score per epoch (a classifier's ``valid_acc``).
    lr : array-like of float, default=None
        Learning rate at the end of each epoch.
    score_name : str, default='valid_acc'
        Label of the score panel.

    Attributes
    ----------
    lines_ : dict of str to matplotlib Line2D
        ``'train_loss'``, ``'valid_loss'``, ``'valid_score'``, ``'lr'`` (those
        drawn).
    ax_ : matplotlib Axes
        The loss panel.
    axes_ : ndarray of matplotlib Axes
        One panel each for the loss, the score and the learning rate (those
        recorded).
    figure_ : matplotlib Figure

    Examples
    --------
    >>> from skcnn.plotting import HistoryDisplay
    >>> HistoryDisplay.from_estimator(clf)  # doctest: +SKIP
    """

    def __init__(self, epochs, train_loss, *, valid_loss=None, valid_score=None,
                 lr=None, score_name="valid_acc"):
        self.epochs = epochs
        self.train_loss = train_loss
        self.valid_loss = valid_loss
        self.valid_score = valid_score
        self.lr = lr
        self.score_name = score_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Read the history of a fitted skcnn estimator and plot it.

        Parameters
        ----------
        estimator : fitted skcnn estimator
        ax : matplotlib Axes or array of Axes, default=None
            One axes per panel (see :meth:`plot`); ``None`` makes a figure.

        Returns
        -------
        display : HistoryDisplay
        """
        check_is_fitted(estimator)
        history = estimator.history_
        epochs = np.asarray(history[:, "epoch"])

        def column(key):
            values = [row.get(key) for row in history]
            return None if any(v is None for v in values) else np.asarray(values, float)

        lr = column("event_lr")
        if lr is None:  # per-batch schedules record in the batches
            per_batch = [[b["event_lr"] for b in row["batches"] if "event_lr" in b]
                         for row in history]
            if all(per_batch):
                lr = np.asarray([values[-1] for values in per_batch], float)
        if lr is None:
            lr = np.full(len(epochs), float(estimator.lr))
        display = cls(epochs, column("train_loss"), valid_loss=column("valid_loss"),
                      valid_score=column("valid_acc"), lr=lr,
                      score_name="validation accuracy")
        return display.plot(ax=ax)

    def plot(self, ax=None):
        """Draw the loss, score and learning-rate panels.

        Parameters
        ----------
        ax : matplotlib Axes or array of Axes, default=None
            A single Axes gets the losses only; an array gets as many panels
            as it holds, in the order loss, score, learning rate. ``None``:
            a new figure with a panel per recorded quantity.

        Returns
        -------
        self : HistoryDisplay
        """
        panels = ["loss"]
        if self.valid_score is not None:
            panels.append("score")
        if self.lr is not None:
            panels.append("lr")
        if ax is not None and np.ndim(ax) == 0:
            ax = [ax]
        if ax is not None:
            panels = panels[:len(ax)]
        fig, axes = _axes_grid(ax, 1, len(panels), size=(4, 3))
        axes = axes[0]
        self.lines_ = {}
        epochs = np.asarray(self.epochs)
        for name, panel in zip(panels, axes):
            if name == "loss":
                (self.lines_["train_loss"],) = panel.plot(
                    epochs, self.train_loss, label="train loss")
                if self.valid_loss is not None:
                    (self.lines_["valid_loss"],) = panel.plot(
                        epochs, self.valid_loss, label="valid loss")
                panel.set_ylabel("loss")
                panel.legend()
            elif name == "score":
                (self.lines_["valid_score"],) = panel.plot(
                    epochs, self.valid_score, color="C2")
                panel.set_ylabel(self.score_name)
            else:
                (self.lines_["lr"],) = panel.plot(epochs, self.lr, color="C3")
                panel.set_ylabel("learning rate")
            panel.set_xlabel("epoch")
        self.figure_, self.axes_, self.ax_ = fig, axes, axes[0]
        return self


# --------------------------------------------------------------------------
# Attributions
# --------------------------------------------------------------------------

_METHOD_TITLES = {"grad_cam": "Grad-CAM", "hires_cam": "HiResCAM",
                  "saliency": "saliency",
                  "smoothgrad": "SmoothGrad",
                  "guided_backprop": "guided backprop",
                  "integrated_gradients": "integrated gradients",
                  "occlusion": "occlusion"}


def _explain(estimator, X, method, target):
    from . import inspection

    if method == "grad_cam":
        return inspection.grad_cam(estimator, X, target)
    if method == "hires_cam":
        return inspection.hires_cam(estimator, X, target)
    if method == "occlusion":
        return inspection.occlusion(estimator, X, target)
    if method in ("saliency", "gradient"):
        return inspection.saliency(estimator, X, target)
    if method in ("smoothgrad", "guided_backprop", "integrated_gradients"):
        return inspection.saliency(estimator, X, target, method=method)
    raise ValueError(
        f"methods must be among {sorted(_METHOD_TITLES)}; got {method!r}."
    )


class AttributionDisplay:
    """Attributions over their inputs: samples in rows, methods in columns.

    Images: the first column shows the input, each other column the input in
    grey under the attribution map (``cmap``, half transparent). Series: one
    panel per sample and method, the series as a line and its time steps as
    points coloured by the attribution.

    Parameters
    ----------
    inputs : ndarray of shape (n_samples, C, H, W) or (n_samples, C, L)
        The inputs as the network sees them (after the estimator's
        preprocessing).
    attributions : dict of str to ndarray of shape (n_samples, H, W) or (n_samples, L)
        One map per method.
    titles : list of str, default=None
        A title per sample (e.g. the predicted label).
    lengths : array-like of int, default=None
        Real lengths of padded series; the padding is not drawn.

    Attributes
    ----------
    images_ : list of matplotlib AxesImage
        Images drawn (inputs and maps).
    collections_ : list of matplotlib PathCollection
        The coloured points of series.
    ax_ : matplotlib Axes
        The top-left panel.
    axes_ : ndarray of matplotlib Axes of shape (n_samples, n_columns)
    figure_ : matplotlib Figure
    """

    def __init__(self, inputs, attributions, *, titles=None, lengths=None):
        self.inputs = inputs
        self.attributions = attributions
        self.titles = titles
        self.lengths = lengths

    @classmethod
    def from_estimator(cls, estimator, X, *, methods=("grad_cam", "saliency",
                                                       "occlusion"),
                       target=None, ax=None, cmap="jet"):
        """Compute attributions with :mod:`skcnn.inspection` and plot them.

        Parameters
        ----------
        estimator : fitted skcnn estimator
        X : array-like
            A few samples, in any format the estimator accepts.
        methods : sequence of str, default=('grad_cam', 'saliency', 'occlusion')
            Among ``'grad_cam'``, ``'hires_cam'``, ``'saliency'``, ``'smoothgrad'``,
            ``'guided_backprop'``, ``'integrated_gradients'`` and
            ``'occlusion'`` (default settings of each function).
        target : label or array-like, default=None
            See :func:`skcnn.inspection.saliency`; ``None``: the predicted class.
        ax : array of matplotlib Axes, default=None
        cmap : str, default='jet'

        Returns
        -------
        display : AttributionDisplay
        """
        from .inspection import _inputs

        check_is_fitted(estimator)
        attributions = {m: _explain(estimator, X, m, target) for m in methods}
        x, mask = _inputs(estimator, X)
        lengths = None if mask is None else mask.sum(1).numpy()
        titles = None
        if estimator._is_classifier():
            titles = [f"predicted {p}" for p in estimator.predict(X)]
        display = cls(x.numpy(), attributions, titles=titles, lengths=lengths)
        return display.plot(ax=ax, cmap=cmap)

    def plot(self, ax=None, *, cmap="jet", alpha=0.5):
        """Draw the grid.

        Parameters
        ----------
        ax : array of matplotlib Axes, default=None
            ``n_samples x n_columns`` axes; ``None`` makes a figure.
        cmap : str, default='jet'
            Colour map of the attributions.
        alpha : float, default=0.5
            Opacity of the maps over images.

        Returns
        -------
        self : AttributionDisplay
        """
        inputs = np.asarray(self.inputs)
        names = list(self.attributions)
        n = len(inputs)
        is_image = inputs.ndim == 4
        n_cols = len(names) + (1 if is_image else 0)
        fig, axes = _axes_grid(ax, n, n_cols, size=(2.2, 2.2) if is_image else (3.5, 1.8))
        self.images_, self.collections_ = [], []
        for i in range(n):
            row = axes[i]
            if is_image:
                picture = _as_picture(inputs[i])
                self.images_.append(row[0].imshow(
                    picture, cmap=None if picture.ndim == 3 else "gray"))
                row[0].set_title(self.titles[i] if self.titles else "input",
                                 fontsize=9)
                for panel, name in zip(row[1:], names):
                    grey = picture.mean(-1) if picture.ndim == 3 else picture
                    self.images_.append(panel.imshow(grey, cmap="gray"))
                    self.images_.append(panel.imshow(
                        np.asarray(self.attributions[name])[i], cmap=cmap,
                        alpha=alpha))
                    panel.set_title(_METHOD_TITLES.get(name, name), fontsize=9)
                for panel in row:
                    panel.set_xticks([])
                    panel.set_yticks([])
            else:
                stop = (inputs.shape[-1] if self.lengths is None
                        else int(self.lengths[i]))
                t = np.arange(stop)
                for panel, name in zip(row, names):
                    values = np.asarray(self.attributions[name])[i, :stop]
                    for c in range(inputs.shape[1]):
                        panel.plot(t, inputs[i, c, :stop], color="0.6", lw=1)
                    self.collections_.append(panel.scatter(
                        t, inputs[i, 0, :stop], c=values, cmap=cmap, s=8))
                    title = _METHOD_TITLES.get(name, name)
                    if self.titles:
                        title = f"{title}: {self.titles[i]}"
                    panel.set_title(title, fontsize=9)
        self.figure_, self.axes_, self.ax_ = fig, axes, axes[0, 0]
        return self


def _as_picture(image):
    """``(C, H, W)`` to something imshow shows: ``(H, W)`` or ``(H, W, 3)``."""
    if image.shape[0] == 3:
        picture = np.moveaxis(image, 0, -1)
        low, high = picture.min(), picture.max()
        return (picture - low) / (high - low) if high > low else picture * 0
    return image.mean(0)


# --------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------

class FiltersDisplay:
    """The filters of a convolution, one panel each.

    Image filters ``(out, in, kh, kw)`` are drawn as pictures (RGB when
    they take 3 channels, else the mean over input channels, centred on
    zero); series filters ``(out, in, k)`` as lines, one per input channel.

    Parameters
    ----------
    filters : ndarray of shape (out_channels, in_channels, kh, kw) or (out_channels, in_channels, k)
        From :func:`skcnn.inspection.filters`.

    Attributes
    ----------
    images_ : list of matplotlib AxesImage
        One per image filter.
    lines_ : list of matplotlib Line2D
        The lines of series filters.
    ax_ : matplotlib Axes
        The first panel.
    axes_ : ndarray of matplotlib Axes
    figure_ : matplotlib Figure
    """

    def __init__(self, filters):
        self.filters = filters

    @classmethod
    def from_estimator(cls, estimator, layer=None, *, max_filters=64, ax=None):
        """Plot the filters of a fitted estimator's convolution.

        Parameters
        ----------
        estimator : fitted skcnn estimator
        layer : str, default=None
            A convolution by name; ``None``: the first.
        max_filters : int, default=64
            Draw at most this many (the first ones).
        ax : array of matplotlib Axes, default=None

        Returns
        -------
        display : FiltersDisplay
        """
        from .inspection import filters

        return cls(filters(estimator, layer)[:max_filters]).plot(ax=ax)

    def plot(self, ax=None, *, n_cols=8, cmap="RdBu_r"):
        """Draw one panel per filter.

        Parameters
        ----------
        ax : array of matplotlib Axes, default=None
            At least one axes per filter; extra ones are switched off.
        n_cols : int, default=8
            Panels per row of a new figure.
        cmap : str, default='RdBu_r'
            Colour map of one-channel image filters (white is zero).

        Returns
        -------
        self : FiltersDisplay
        """
        w = np.asarray(self.filters)
        k = len(w)
        if ax is None:
            n_cols = min(n_cols, k)
            n_rows = -(-k // n_cols)
            fig, axes = _axes_grid(None, n_rows, n_cols, size=(1.2, 1.2))
        else:
            axes = np.asarray(ax, dtype=object).reshape(1, -1)
            if axes.size < k:
                raise ValueError(f"ax must hold at least {k} axes; got {axes.size}.")
            fig = axes.flat[0].figure
        flat = axes.ravel()
        self.images_, self.lines_ = [], []
        for i, panel in enumerate(flat):
            if i >= k:
                panel.set_axis_off()
                continue
            if w.ndim == 4:
                if w.shape[1] == 3:
                    picture = np.moveaxis(w[i], 0, -1)
                    low, high = picture.min(), picture.max()
                    picture = (picture - low) / (high - low) if high > low else picture * 0
                    self.images_.append(panel.imshow(picture))
                else:
                    picture = w[i].mean(0)
                    bound = np.abs(picture).max() or 1.0
                    self.images_.append(panel.imshow(picture, cmap=cmap,
                                                     vmin=-bound, vmax=bound))
                panel.set_xticks([])
                panel.set_yticks([])
            else:
                for c in range(w.shape[1]):
                    self.lines_.extend(panel.plot(w[i, c]))
                panel.set_xticks([])
        self.figure_, self.axes_, self.ax_ = fig, axes, flat[0]
        return self


# --------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------

class EmbeddingDisplay:
    """A 2-D map of embeddings, one colour per label.

    Parameters
    ----------
    embedding : ndarray of shape (n_samples, 2)
        The map (t-SNE or PCA of the embeddings).
    labels : array-like of shape (n_samples,), default=None
        Colours the points by label (one scatter per label, in a legend).
    method : str, default=None
        Shown in the axis labels (``'tsne'``, ``'pca'``).

    Attributes
    ----------
    scatters_ : list of matplotlib PathCollection
        One per label (a single one without labels).
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure
    """

    def __init__(self, embedding, labels=None, *, method=None):
        self.embedding = embedding
        self.labels = labels
        self.method = method

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, method="tsne", layer=None,
                       perplexity=30.0, random_state=None, ax=None):
        """Embed X with a fitted estimator's network and map it to 2-D.

        The embeddings are those of
        ``PretrainedFeatureExtractor(backbone=estimator, layer=layer)``
        (the penultimate layer by default), reduced by t-SNE or PCA.

        Parameters
        ----------
        estimator : fitted skcnn estimator
        X : array-like
            Inputs in any format the estimator accepts.
        y : array-like, default=None
            Labels that colour the points (the true ones, or predictions).
        method : {'tsne', 'pca'}, default='tsne'
        layer : str, default=None
            Another layer whose output is average-pooled and mapped.
        perplexity : float, default=30.0
            Of t-SNE; capped below the number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds t-SNE.
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : EmbeddingDisplay
        """
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        from .pretrained import PretrainedFeatureExtractor

        if method not in ("tsne", "pca"):
            raise ValueError(f"method must be 'tsne' or 'pca'; got {method!r}.")
        check_is_fitted(estimator)
        features = PretrainedFeatureExtractor(estimator, layer=layer).fit_transform(X)
        if method == "pca":
            points = PCA(n_components=2).fit_transform(features)
        else:
            perplexity = min(perplexity, (len(features) - 1) / 3)
            points = TSNE(n_components=2, perplexity=perplexity, init="pca",
                          random_state=random_state).fit_transform(features)
        return cls(points, y, method=method).plot(ax=ax)

    def plot(self, ax=None, *, s=12):
        """Draw the map.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        s : float, default=12
            Marker size.

        Returns
        -------
        self : EmbeddingDisplay
        """
        plt = _pyplot()
        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 4.5))
        else:
            fig = ax.figure
        points = np.asarray(self.embedding)
        self.scatters_ = []
        if self.labels is None:
            self.scatters_.append(ax.scatter(points[:, 0], points[:, 1], s=s))
        else:
            labels = np.asarray(self.labels)
            for label in np.unique(labels):
                keep = labels == label
                self.scatters_.append(ax.scatter(points[keep, 0], points[keep, 1],
                                                 s=s, label=str(label)))
            ax.legend(fontsize=8, markerscale=1.5)
        name = {"tsne": "t-SNE", "pca": "PCA"}.get(self.method, "component")
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
        self.figure_, self.ax_ = fig, ax
        self.axes_ = np.asarray([ax], dtype=object)
        return self
