"""Look inside a fitted network: attributions, activations and filters.

The counterpart of :mod:`sklearn.inspection` for the skcnn estimators. Every
function takes a fitted :class:`~skcnn.CNNClassifier`,
:class:`~skcnn.CNNRegressor`, :class:`~skcnn.Conv1DClassifier` or
:class:`~skcnn.Conv1DRegressor` (built-in, torchvision, timm or your own
architecture) and ``X`` in any format that estimator's ``predict`` accepts.
``X`` goes through the estimator's own preprocessing
(``BaseCNN._prepare``: validation, scaling of integer images, the channel
layout, ``normalize`` and the padding and masks of unequal-length series),
so the attributions are those of the inputs the network really sees, laid
out on the inputs' spatial grid: ``(n_samples, height, width)`` for images,
``(n_samples, length)`` for series (unequal-length series: padded to the
longest, with zeros on the padding).

- :func:`saliency`: gradients (Simonyan et al. 2014), SmoothGrad (Smilkov
  et al. 2017) or integrated gradients (Sundararajan et al. 2017);
- :func:`occlusion`: the drop of the output when a window is blanked out
  (Zeiler and Fergus 2014);
- :func:`grad_cam`: Grad-CAM (Selvaraju et al. 2017) at the last
  convolutional block, upsampled to the input; for 1-D networks ending in
  global average pooling and a linear layer (FCN, ResNet, InceptionTime)
  it is the class activation map of Wang et al. (2017) up to a positive
  factor;
- :func:`activations`: the feature maps of any layer;
- :func:`filters`: the weights of a convolution (the first by default).

The attribution methods come from `captum <https://captum.ai>`_ (``pip
install 'skcnn[explain]'``); :func:`activations` and :func:`filters` need
only torch.
"""

import warnings
from collections import Counter
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._backbones import _first_tensor
from ._compat import Interval, StrOptions, validate_params
from ._docs import fill_doc
from ._utils import did_you_mean
from .models._layers import dry_run

__all__ = ["activations", "filters", "grad_cam", "hires_cam", "occlusion", "saliency"]

SALIENCY_METHODS = ("gradient", "guided_backprop", "integrated_gradients",
                    "smoothgrad")


def _captum():
    try:
        import captum.attr
    except ImportError:
        raise ImportError(
            "skcnn.inspection's attribution methods need captum; install it "
            "with pip install 'skcnn[explain]' (or pip install captum)."
        ) from None
    return captum.attr


# --------------------------------------------------------------------------
# The estimator's inputs, network and targets
# --------------------------------------------------------------------------

def _check_estimator(estimator):
    from ._base import BaseCNN

    if not isinstance(estimator, BaseCNN):
        raise TypeError(
            "skcnn.inspection takes a fitted CNNClassifier, CNNRegressor, "
            f"Conv1DClassifier or Conv1DRegressor; got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    return estimator.net_.module_, torch.device(estimator.net_.device)


def _inputs(estimator, X):
    """``X`` as the network sees it: a tensor ``(n, C, *spatial)`` and a mask.

    The estimator's own ``_prepare`` does the work (the same call as in
    ``predict``); the mask is ``(n, L)``, True on real time steps, for
    unequal-length series, else None.
    """
    X3, lengths, _ = estimator._prepare(X, reset=False)
    if hasattr(X3, "stack"):  # uint8, channels-last or streamed images
        x = X3.stack()  # a new float tensor (n, C, H, W)
    else:
        # A copy: the tensors below must never share memory with the user's X.
        x = torch.tensor(np.asarray(X3, dtype=np.float32))
    mask = None
    if lengths is not None:
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        mask = torch.arange(x.shape[-1])[None, :] < lengths[:, None]
    return x, mask


class _Masked(nn.Module):
    """``module`` called as ``f(x, mask)``: a module, so captum finds its ReLUs."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x, mask):
        return self.module(x, mask=mask)


def _call(module, mask):
    """The forward module given to captum: ``f(x[, mask])``."""
    return module if mask is None else _Masked(module)


def _outputs(module, x, mask):
    out = module(x) if mask is None else module(x, mask=mask)
    return _first_tensor(out).reshape(len(x), -1)


def _targets(estimator, target, n):
    """Output index per sample for an explicit ``target``, or None (predicted)."""
    if target is None:
        if estimator._is_classifier() or estimator._n_outputs == 1:
            return None
        raise ValueError(
            f"{type(estimator).__name__} has {estimator._n_outputs} outputs; pass "
            f"target=<index of the output> (0 to {estimator._n_outputs - 1})."
        )
    values = np.asarray(target)
    if values.ndim > 1 or (values.ndim == 1 and len(values) != n):
        raise ValueError(
            f"target must be one value or one per sample ({n}); got an array "
            f"of shape {values.shape}."
        )
    values = np.broadcast_to(values, (n,))
    if estimator._is_classifier():
        classes = estimator.classes_
        index = {c: i for i, c in enumerate(classes.tolist())}
        try:
            idx = [index[v] for v in values.tolist()]
        except (KeyError, TypeError):
            unknown = sorted({repr(v) for v in values.tolist()
                              if v not in index})[:5]
            raise ValueError(
                f"target holds labels that are not in classes_ "
                f"{classes.tolist()}: {', '.join(unknown)}."
            ) from None
        return torch.as_tensor(idx, dtype=torch.long)
    k = estimator._n_outputs
    if values.dtype.kind not in "iu" or values.min() < 0 or values.max() >= k:
        raise ValueError(
            f"For a regressor, target is the index of an output, an int from 0 "
            f"to {k - 1}; got {target!r}."
        )
    return torch.as_tensor(values.astype(np.int64))


class _EvalMode:
    """Eval mode for the duration of a ``with`` block; modes restored after."""

    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.module.modules()]
        self.module.eval()
        return self.module

    def __exit__(self, *exc):
        for m, mode in self.modes:
            m.training = mode


def _attribute(estimator, X, target, batch_size, explain):
    """Run ``explain(forward, x, mask, target)`` batch by batch.

    Returns the attributions as float32 numpy, zero on padded time steps.
    """
    module, device = _check_estimator(estimator)
    _check_batch_size(batch_size)
    x_all, mask_all = _inputs(estimator, X)
    n = len(x_all)
    targets = _targets(estimator, target, n)
    parts = []
    with _EvalMode(module):
        for start in range(0, n, batch_size):
            # A fresh leaf that requires grad (captum would warn and set it).
            xb = x_all[start:start + batch_size].to(device).clone().requires_grad_()
            mb = None if mask_all is None else mask_all[start:start + batch_size].to(device)
            if targets is None:  # the predicted class; the only output of a regressor
                with torch.no_grad():
                    tb = _outputs(module, xb, mb).argmax(1)
            else:
                tb = targets[start:start + batch_size].to(device)
            parts.append(explain(_call(module, mb), xb, mb, tb).detach().float().cpu())
    out = torch.cat(parts) if parts else torch.zeros((0,) + tuple(x_all.shape[2:]))
    if mask_all is not None:
        mask = mask_all.reshape(mask_all.shape[:1] + (1,) * (out.ndim - 2)
                                + mask_all.shape[1:])
        out = out * mask
    return out.numpy()


def _extra(mask):
    return None if mask is None else (mask,)


def _check_batch_size(batch_size):
    if (isinstance(batch_size, bool) or not isinstance(batch_size, Integral)
            or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")


def _reduce_channels(attr, how, keep_channels):
    """``(n, C, *spatial)`` to ``(n, *spatial)``: 'max_abs' or 'sum'."""
    if keep_channels:
        return attr
    return attr.abs().amax(1) if how == "max_abs" else attr.sum(1)


# --------------------------------------------------------------------------
# Attributions
# --------------------------------------------------------------------------

@validate_params(
    {
        "estimator": "no_validation",
        "X": "no_validation",
        "target": "no_validation",
        "method": [StrOptions(set(SALIENCY_METHODS))],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "baseline": [Real],
        "keep_channels": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def saliency(estimator, X, target=None, *, method="gradient", n_samples=20,
             noise_level=0.15, n_steps=32, baseline=0.0, keep_channels=False,
             batch_size=32):
    """Gradient-based attribution of the output to every input value.

    Parameters
    ----------
    estimator : fitted skcnn estimator
        A ``CNNClassifier``, ``CNNRegressor``, ``Conv1DClassifier`` or
        ``Conv1DRegressor``.
    X : array-like, DataFrame or list of series
        Inputs in any format the estimator's ``predict`` accepts.
    target : label, array-like of labels or int, default=None
        What to explain. ``None``: the predicted class of each sample (a
        regressor's only output). Otherwise a label from ``classes_`` (or one
        per sample); for a regressor with several outputs, an output index.
        Classifiers are explained through their logits, regressors through
        their (standardised) output.
    method : {'gradient', 'guided_backprop', 'integrated_gradients', \
'smoothgrad'}, default='gradient'
        ``'gradient'``: the absolute gradient, maximum over channels
        (Simonyan et al. 2014). ``'guided_backprop'``: the gradient with
        every ``nn.ReLU`` letting only positive gradients back through
        (Springenberg et al. 2015), absolute and maximum over channels
        (signed with ``keep_channels=True``); ReLUs called as functions
        are not guided. ``'smoothgrad'``: the absolute gradient
        averaged over ``n_samples`` noisy copies of each input (Smilkov et
        al. 2017), maximum over channels. ``'integrated_gradients'``: the
        gradient integrated along the straight path from ``baseline`` to the
        input, times ``input - baseline``, summed over channels
        (Sundararajan et al. 2017); signed, and summing to the difference of
        the outputs at the input and at the baseline.
    n_samples : int, default=20
        Noisy copies per input (``'smoothgrad'``).
    noise_level : float, default=0.15
        Standard deviation of the noise (``'smoothgrad'``), as a fraction of
        the range of the batch's values.
    n_steps : int, default=32
        Steps of the path integral (``'integrated_gradients'``).
    baseline : float, default=0.0
        The reference input of ``'integrated_gradients'`` (0: black images;
        the mean of z-normalised series).
    keep_channels : bool, default=False
        Return ``(n, C, *spatial)``, one map per channel, without the
        reduction over channels (``'guided_backprop'``: signed).
    batch_size : int, default=32
        Samples per backward pass.

    Returns
    -------
    attributions : ndarray of shape (n_samples, H, W) or (n_samples, L), float32
        ``(n, H, W)`` for images, ``(n, L)`` for series; zero on the
        padding of unequal-length series.
    """
    attr = _captum()

    def explain(forward, x, mask, target):
        extra = _extra(mask)
        if method == "gradient":
            a = attr.Saliency(forward).attribute(
                x, target=target, abs=True, additional_forward_args=extra)
            return _reduce_channels(a, "max_abs", keep_channels)
        if method == "guided_backprop":
            with warnings.catch_warnings():  # captum's note that it hooks the ReLUs
                warnings.filterwarnings("ignore", "Setting backward hooks on ReLU",
                                        UserWarning)
                a = attr.GuidedBackprop(forward).attribute(
                    x, target=target, additional_forward_args=extra)
            return _reduce_channels(a, "max_abs", keep_channels)
        if method == "smoothgrad":
            span = float(x.detach().max() - x.detach().min()) or 1.0
            a = attr.NoiseTunnel(attr.Saliency(forward)).attribute(
                x, nt_type="smoothgrad", nt_samples=n_samples,
                nt_samples_batch_size=min(n_samples, 8),
                stdevs=noise_level * span, target=target, abs=True,
                additional_forward_args=extra)
            return _reduce_channels(a, "max_abs", keep_channels)
        a = attr.IntegratedGradients(forward).attribute(
            x, baselines=float(baseline), target=target, n_steps=n_steps,
            internal_batch_size=max(len(x), 1) * min(n_steps, 8),
            additional_forward_args=extra)
        return _reduce_channels(a, "sum", keep_channels)

    return _attribute(estimator, X, target, batch_size, explain)


def _window(value, spatial, name):
    if value is None:
        return None
    if isinstance(value, Integral) and not isinstance(value, bool):
        value = (value,) * len(spatial)
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        out = ()
    if len(out) != len(spatial) or min(out) < 1:
        raise ValueError(
            f"{name} must be a positive int or {len(spatial)} positive ints (one "
            f"per spatial axis of inputs of size {tuple(spatial)}); got {value!r}."
        )
    return out


@validate_params(
    {
        "estimator": "no_validation",
        "X": "no_validation",
        "target": "no_validation",
        "window": [None, Interval(Integral, 1, None, closed="left"), tuple, list],
        "stride": [None, Interval(Integral, 1, None, closed="left"), tuple, list],
        "baseline": [Real],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def occlusion(estimator, X, target=None, *, window=None, stride=None, baseline=0.0,
              batch_size=32):
    """Occlusion sensitivity: how much the output drops when a patch is hidden.

    A window slides over the input (all channels at once); at each position
    the values under it are replaced by ``baseline`` and the output is
    recomputed. A value's attribution is the drop ``output(x) -
    output(occluded x)`` averaged over the windows that cover it (Zeiler
    and Fergus 2014).

    Parameters
    ----------
    estimator : fitted skcnn estimator
    X : array-like, DataFrame or list of series
        Inputs in any format the estimator's ``predict`` accepts.
    target : label, array-like of labels or int, default=None
        See :func:`saliency`.
    window : int or tuple of int, default=None
        Size of the window per spatial axis. ``None``: an eighth of each
        axis (at least 1).
    stride : int or tuple of int, default=None
        Step between windows. ``None``: half the window (at least 1).
    baseline : float, default=0.0
        The value that hides a patch.
    batch_size : int, default=32
        Samples per forward pass.

    Returns
    -------
    attributions : ndarray of shape (n_samples, H, W) or (n_samples, L), float32
        Positive where hiding the patch lowers the output; zero on the
        padding of unequal-length series.
    """
    attr = _captum()
    _check_estimator(estimator)
    spatial = estimator.input_shape_[1:]
    window = _window(window, spatial, "window")
    stride = _window(stride, spatial, "stride")

    def explain(forward, x, mask, target):
        size = x.shape[2:]
        win = window or tuple(max(1, s // 8) for s in size)
        if any(w > s for w, s in zip(win, size)):
            raise ValueError(f"window {win} is larger than the inputs {tuple(size)}.")
        step = stride or tuple(max(1, w // 2) for w in win)
        a = attr.Occlusion(forward).attribute(
            x, sliding_window_shapes=(x.shape[1],) + win, strides=(x.shape[1],) + step,
            baselines=float(baseline), target=target,
            additional_forward_args=_extra(mask), perturbations_per_eval=8)
        return a.mean(1)  # the same value on every channel: windows span them all

    return _attribute(estimator, X, target, batch_size, explain)


# Parameters of grad_cam and hires_cam: their validation and documentation.
_CAM_DOC = """Parameters
    ----------
    estimator : fitted skcnn estimator
    X : array-like, DataFrame or list of series
        Inputs in any format the estimator's ``predict`` accepts.
    target : label, array-like of labels or int, default=None
        See :func:`saliency`.
    layer : str or nn.Module, default=None
        The layer whose output is weighted: a dotted name of
        ``estimator.module_.named_modules()`` (for a torchvision/timm
        backbone the name inside it, e.g. ``'layer4'``, works too) or the
        module. ``None``: the last convolutional block, found by a dry
        forward pass (the last module whose output has the shape of the last
        convolution's output: its block, after batch norm and activation).
    relu : bool, default=True
        Keep only the positive evidence, as Grad-CAM does; ``False`` returns
        the signed map (the CAM of Wang et al. can be negative).
    batch_size : int, default=32
        Samples per pass.

    Returns
    -------
    cam : ndarray of shape (n_samples, H, W) or (n_samples, L), float32
        ``(n, H, W)`` for images, ``(n, L)`` for series; zero on the padding
        of unequal-length series."""
_CAM_PARAMS = {
    "estimator": "no_validation",
    "X": "no_validation",
    "target": "no_validation",
    "layer": [None, str, nn.Module],
    "relu": ["boolean"],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
}


@validate_params(_CAM_PARAMS, prefer_skip_nested_validation=True)
@fill_doc(cam_params=_CAM_DOC)
def grad_cam(estimator, X, target=None, *, layer=None, relu=True, batch_size=32):
    """Grad-CAM: where in the input the last convolutional maps support a class.

    The feature maps ``A_k`` of ``layer`` are weighted by the spatial mean of
    the gradient of the output with respect to them, summed over ``k``,
    passed through a ReLU and upsampled (bilinearly for images, linearly for
    series) to the input's size (Selvaraju et al. 2017). For a network that
    ends in global average pooling and one linear layer, the weights are
    that layer's weights over the number of positions, so the map is the
    class activation map (CAM) of Zhou et al. (2016), shown for time series
    by Wang et al. (2017), up to a positive factor per sample.

    {cam_params}
    """
    return _cam(estimator, X, target, layer, relu, batch_size, hires=False)


@validate_params(_CAM_PARAMS, prefer_skip_nested_validation=True)
@fill_doc(cam_params=_CAM_DOC)
def hires_cam(estimator, X, target=None, *, layer=None, relu=True, batch_size=32):
    """HiResCAM: Grad-CAM with the gradient applied position by position.

    The feature maps ``A_k`` of ``layer`` are multiplied element-wise by the
    gradient of the output with respect to them (not by its spatial mean, as
    in :func:`grad_cam`), summed over ``k``, passed through a ReLU and
    upsampled to the input's size (Draelos and Carin 2020). The map then
    shows the positions that raised the output, where Grad-CAM can also
    light up positions whose gradient points the other way. For a network
    that ends in global average pooling and one linear layer both give the
    class activation map.

    {cam_params}
    """
    return _cam(estimator, X, target, layer, relu, batch_size, hires=True)


def _cam(estimator, X, target, layer, relu, batch_size, *, hires):
    """Grad-CAM (``hires=False``) or HiResCAM maps; see :func:`grad_cam`."""
    attr = _captum()
    _check_estimator(estimator)
    target_layer = resolve_layer(estimator, layer)

    def explain(forward, x, mask, target):
        if hires:
            cam = _first_tensor(attr.LayerGradientXActivation(forward, target_layer)
                                .attribute(x, target=target,
                                           additional_forward_args=_extra(mask)))
            if cam.ndim == x.ndim:
                cam = cam.sum(1, keepdim=True)
                cam = cam.clamp(min=0) if relu else cam
        else:
            cam = _first_tensor(attr.LayerGradCam(forward, target_layer).attribute(
                x, target=target, additional_forward_args=_extra(mask),
                relu_attributions=relu))
        if mask is not None and not hires:
            # Written here, not in captum: captum averages the gradients over
            # every position, padding included, which scales a padded
            # series' map by its share of real steps. Averaging over the real
            # steps only makes the map independent of the padding.
            cam = cam * (mask.shape[1] / mask.sum(1)).reshape(-1, 1, 1)
        if cam.ndim != x.ndim:
            raise ValueError(
                f"The layer's output has shape {tuple(cam.shape)}, not a feature "
                f"map like the input {tuple(x.shape)}; choose a convolutional layer."
            )
        if cam.shape[2:] != x.shape[2:]:
            cam = attr.LayerAttribution.interpolate(
                cam, tuple(x.shape[2:]),
                interpolate_mode="linear" if x.ndim == 3 else "bilinear")
        return cam[:, 0]

    return _attribute(estimator, X, target, batch_size, explain)


# --------------------------------------------------------------------------
# Layers, activations, filters
# --------------------------------------------------------------------------

def _run_with_hooks(module, sample_shape):
    """``[(name, module, output shape)]`` in the order the calls finished."""
    calls = []
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def hook(_mod, _args, output, name=name, sub=sub):
            try:
                shape = tuple(_first_tensor(output).shape)
            except TypeError:
                shape = None
            calls.append((name, sub, shape))

        handles.append(sub.register_forward_hook(hook))
    try:
        dry_run(module, sample_shape, device=_device_of(module))
    finally:
        for h in handles:
            h.remove()
    return calls


def _device_of(module):
    p = next(module.parameters(), None)
    if p is None:
        p = next(module.buffers(), None)
    return "cpu" if p is None else p.device


def last_conv_block(module, sample_shape):
    """Dotted name of the last convolutional block of ``module``.

    Written here: captum's ``LayerGradCam`` must be given its layer, and
    the right one differs between architectures (``layer4`` of a ResNet,
    ``bn2`` of a timm EfficientNet, the last block of an FCN).

    The last module, in the order the forward pass finishes them, whose
    output is a feature map on the grid of the last convolution that ran
    (so the block after its batch norm and activation, or the
    concatenation of an inception module's branches, not a pooling that
    follows; pooling layers are skipped, also where a 1 x 1 map keeps its
    shape). Modules called more than once are skipped.

    Parameters
    ----------
    module : nn.Module
    sample_shape : tuple of int
        ``(C, *spatial)`` of one input.

    Returns
    -------
    name : str
    """
    calls = _run_with_hooks(module, sample_shape)
    convs = [i for i, (_, sub, _) in enumerate(calls)
             if isinstance(sub, nn.modules.conv._ConvNd)]
    if not convs:
        raise ValueError(
            f"{type(module).__name__} has no convolution that runs in its "
            "forward pass; pass layer=<name>."
        )
    counts = Counter(name for name, _, _ in calls)
    name, _, shape = calls[convs[-1]]
    for other, sub, other_shape in calls[convs[-1] + 1:]:
        # The same grid, any number of channels: the concatenation of an
        # inception module's branches is a block, its last branch is not.
        # A global pooling of a 1 x 1 map keeps its shape: not a conv block.
        if (other_shape is not None and len(other_shape) == len(shape)
                and other_shape[0] == shape[0] and other_shape[2:] == shape[2:]
                and counts[other] == 1
                and "pool" not in type(sub).__name__.lower()):
            name = other
    return name


def resolve_layer(estimator, layer):
    """The submodule of a fitted estimator's network that ``layer`` names."""
    module = estimator.net_.module_
    if layer is None:
        return module.get_submodule(last_conv_block(module, estimator.input_shape_))
    if isinstance(layer, nn.Module):
        if not any(layer is m for m in module.modules()):
            raise ValueError("layer is a module that is not part of estimator.module_.")
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a layer name (str), an nn.Module or None; "
                        f"got {type(layer).__name__}.")
    names = dict(module.named_modules())
    for candidate in (layer, f"backbone.{layer}"):  # PretrainedNet wraps backbones
        if candidate in names and candidate:
            return names[candidate]
    hint = did_you_mean(layer, [n for n in names if n], n=5)
    raise ValueError(
        f"{type(module).__name__} has no layer {layer!r}.{hint} Any dotted name of "
        "estimator.module_.named_modules() is accepted."
    )


@validate_params(
    {
        "estimator": "no_validation",
        "X": "no_validation",
        "layer": [None, str, nn.Module],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def activations(estimator, X, layer=None, *, batch_size=64):
    """The output of one layer of the network for every sample.

    Parameters
    ----------
    estimator : fitted skcnn estimator
    X : array-like, DataFrame or list of series
        Inputs in any format the estimator's ``predict`` accepts.
    layer : str or nn.Module, default=None
        A dotted name of ``estimator.module_.named_modules()`` (see
        :func:`grad_cam`); ``None``: the last convolutional block.
    batch_size : int, default=64
        Samples per forward pass.

    Returns
    -------
    activations : ndarray of shape (n_samples, ...), float32
        The layer's output, such as ``(n, C, H, W)`` feature maps. Maps of
        unequal-length series that keep the input's length are zero on the
        padding.
    """
    module, device = _check_estimator(estimator)
    _check_batch_size(batch_size)
    target_layer = resolve_layer(estimator, layer)
    x_all, mask_all = _inputs(estimator, X)
    parts = []

    def hook(_mod, _args, output):
        parts.append(_first_tensor(output).detach().float().cpu())

    handle = target_layer.register_forward_hook(hook)
    try:
        with _EvalMode(module), torch.inference_mode():
            for start in range(0, len(x_all), batch_size):
                before = len(parts)
                xb = x_all[start:start + batch_size].to(device)
                mb = (None if mask_all is None
                      else mask_all[start:start + batch_size].to(device))
                _outputs(module, xb, mb)
                if len(parts) != before + 1:
                    raise ValueError(
                        f"The layer ran {len(parts) - before} times in one forward "
                        "pass; choose a layer that runs exactly once."
                    )
    finally:
        handle.remove()
    out = torch.cat(parts)
    if mask_all is not None and out.ndim == 3 and out.shape[-1] == mask_all.shape[-1]:
        out = out * mask_all[:, None, :]
    return out.numpy()


@validate_params(
    {
        "estimator": "no_validation",
        "layer": [None, str, nn.Module],
    },
    prefer_skip_nested_validation=True,
)
def filters(estimator, layer=None):
    """The weights of a convolution: the first one by default.

    Parameters
    ----------
    estimator : fitted skcnn estimator
    layer : str or nn.Module, default=None
        A convolution of ``estimator.module_``, by dotted name or as the
        module. ``None``: the first convolution (for a pretrained backbone,
        its stem, after the normalisation layer).

    Returns
    -------
    weights : ndarray of shape (out_channels, in_channels, kh, kw) or (out_channels, in_channels, k), float32
        A copy of the filters: ``(out, in, kh, kw)`` for images, ``(out,
        in, k)`` for series.
    """
    module, _ = _check_estimator(estimator)
    if layer is None:
        conv = next((m for m in module.modules()
                     if isinstance(m, nn.modules.conv._ConvNd)), None)
        if conv is None:
            raise ValueError(f"{type(module).__name__} has no convolution.")
    else:
        conv = resolve_layer(estimator, layer)
        weight = getattr(conv, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim < 3:
            raise ValueError(
                f"layer {layer!r} is a {type(conv).__name__}, not a convolution "
                "with weights (out_channels, in_channels, *kernel_size)."
            )
    return conv.weight.detach().float().cpu().numpy().copy()
