"""``skcnn.summary``: the layers of an estimator's network, as a table.

One dry forward pass of one sample (:func:`skcnn.models._layers.dry_run`'s
input) records, per layer, its output shape (forward hooks), its FLOPs
(:class:`torch.utils.flop_counter.FlopCounterMode`) and its parameters;
a :class:`~torch.overrides.TorchFunctionMode` follows the receptive field
of every tensor derived from the input through the convolutions and
poolings, up to the last convolution.
"""

import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from ._backbones import _first_tensor
from ._compat import Interval, validate_params
from ._data import to_canonical
from ._finetune import configure
from ._utils import seed_from, torch_seed

__all__ = ["ModelSummary", "summary"]

COLUMNS = ["name", "type", "output_shape", "trainable_params", "frozen_params",
           "flops"]


class ModelSummary(pd.DataFrame):
    """A :class:`pandas.DataFrame` of layers that prints with its totals.

    One row per layer (leaf module, or module holding parameters of its
    own), in the order the forward pass runs them; layers that do not run
    come last with no output shape. Columns: ``name`` (dotted, as in
    ``named_modules()``), ``type``, ``output_shape`` (of one sample),
    ``trainable_params``, ``frozen_params`` and ``flops`` (floating-point
    operations for one sample as torch's ``FlopCounterMode`` counts them:
    convolutions and matrix products, a multiply-add counting two; batch
    norm, activations and pooling count zero). ``attrs``
    holds the totals: ``'input_shape'``, ``'total_params'``,
    ``'trainable_params'``, ``'frozen_params'``, ``'flops'`` and
    ``'receptive_field'`` (of the last convolution, per spatial axis).
    Operations on it give plain DataFrames.
    """

    @property
    def _constructor(self):
        return pd.DataFrame

    def __repr__(self):
        return self.to_text()

    def __str__(self):
        return self.to_text()

    def to_text(self):
        """The table and its totals as readable text."""
        shown = pd.DataFrame(self).copy()
        shown["output_shape"] = [("-" if s is None else " x ".join(map(str, s)))
                                 for s in shown["output_shape"]]
        for col in ("trainable_params", "frozen_params", "flops"):
            shown[col] = [f"{v:,}" for v in shown[col]]
        a = self.attrs
        rf = a.get("receptive_field")
        lines = [
            shown.to_string(index=False),
            "",
            f"Input shape: {' x '.join(map(str, a.get('input_shape', ())))}",
            f"Parameters: {a.get('total_params', 0):,} "
            f"(trainable {a.get('trainable_params', 0):,}, "
            f"frozen {a.get('frozen_params', 0):,})",
            f"FLOPs per sample: {_human(a.get('flops', 0))}",
            "Receptive field of the last convolution: "
            + ("-" if rf is None else " x ".join(map(str, rf))),
        ]
        return "\n".join(lines)


def _human(n):
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit} ({n:,})"
    return f"{n:,}"


@validate_params(
    {
        "estimator": "no_validation",
        "input_shape": [None, tuple, list],
        "n_outputs": [None, Interval(numbers.Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def summary(estimator, input_shape=None, *, n_outputs=None):
    """Layers, output shapes, parameters and FLOPs of an estimator's network.

    Parameters
    ----------
    estimator : skcnn estimator
        A ``CNNClassifier``, ``CNNRegressor``, ``Conv1DClassifier`` or
        ``Conv1DRegressor``, fitted or not. A fitted one is summarised as
        fitted (its network, the per-sample shape seen in ``fit``); an
        unfitted one is built from its parameters as ``fit`` would build it,
        which needs ``input_shape``.
    input_shape : tuple of int, default=None
        Shape of one sample as the estimator reads it: ``(C, H, W)`` or
        ``(H, W)`` for images, ``(C, L)`` or ``(L,)`` for series (``(H, W)``
        and ``(L,)`` mean one channel). ``None``: the fitted
        ``input_shape_``; required for an unfitted estimator.
    n_outputs : int, default=None
        Outputs of the head of an unfitted estimator (the number of
        classes). ``None``: 2 for a classifier, 1 for a regressor. Ignored
        for a fitted one.

    Returns
    -------
    summary : ModelSummary
        A DataFrame with one row per layer (see :class:`ModelSummary`); its
        text form adds the totals and the receptive field of the last
        convolution.

    Examples
    --------
    >>> from skcnn import CNNClassifier, summary
    >>> table = summary(CNNClassifier(), input_shape=(1, 28, 28), n_outputs=10)
    >>> int(table["trainable_params"].sum())
    421738
    """
    from ._base import BaseCNN

    if not isinstance(estimator, BaseCNN):
        raise TypeError(
            "summary takes a CNNClassifier, CNNRegressor, Conv1DClassifier or "
            f"Conv1DRegressor; got {type(estimator).__name__}."
        )
    if hasattr(estimator, "net_") and input_shape is None:
        module, shape = estimator.net_.module_, tuple(estimator.input_shape_)
    else:
        if input_shape is None:
            raise ValueError(
                f"{type(estimator).__name__} is not fitted: pass input_shape, the "
                "shape of one sample, such as (1, 28, 28) or (28, 28) for images, "
                "(1, 500) for series."
            )
        module, shape = _build(estimator, input_shape, n_outputs)
    return _summarise(module, shape)


def _build(estimator, input_shape, n_outputs):
    """The network an unfitted estimator would build for ``input_shape``."""
    name = type(estimator).__name__
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of ints; got {input_shape!r}.") from None
    ndim = estimator._ndim
    if len(shape) not in (ndim, ndim + 1) or min(shape) < 1:
        kind = "(C, H, W) or (H, W)" if ndim == 2 else "(C, L) or (L,)"
        raise ValueError(f"input_shape must be {kind} for {name}; got {input_shape!r}.")
    if n_outputs is None:
        n_outputs = 2 if estimator._is_classifier() else 1
    est = clone(estimator)
    sample = np.zeros((1,) + shape, dtype=np.float32)
    est.input_shape_ = tuple(to_canonical(sample, ndim, None, name).shape[1:])
    routed = est._routed_params()
    module_kwargs = {k[len("module__"):]: v for k, v in routed.items()
                     if k.startswith("module__")}
    with torch_seed(seed_from(est.random_state)):
        module, groups = est._make_module(int(n_outputs), module_kwargs)
    # freeze as fit would, so that the frozen parameters are counted as such
    configure(module, groups, freeze=est.freeze,
              unfreeze_at_epoch=est.unfreeze_at_epoch, lr=est.lr,
              lr_decay=est.lr_decay)
    return module, est.input_shape_


def _device(module):
    p = next(module.parameters(), None)
    return torch.device("cpu") if p is None else p.device


def _summarise(module, shape):
    order, shapes, counts = [], {}, {}
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def hook(_mod, _args, output, name=name):
            counts[name] = counts.get(name, 0) + 1
            if name not in shapes:
                order.append(name)
                try:
                    shapes[name] = tuple(_first_tensor(output).shape[1:])
                except TypeError:
                    shapes[name] = None

        handles.append(sub.register_forward_hook(hook))
    x = torch.zeros((1,) + tuple(shape), device=_device(module))
    was_training = module.training
    module.eval()
    tracker = _ReceptiveField(x)
    flop_counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), flop_counter, tracker:
            module(x)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    flops = {k: int(sum(v.values())) for k, v in flop_counter.get_flop_counts().items()}
    root = type(module).__name__

    def flops_of(name):
        return flops.get(f"{root}.{name}", 0)

    modules = dict(module.named_modules())
    rows = []
    listed = [n for n in order] + [n for n in modules if n and n not in shapes]
    for name in listed:
        sub = modules[name]
        own = list(sub.parameters(recurse=False))
        children = [f"{name}.{c}" for c, _ in sub.named_children()]
        if children and not own:
            continue
        # A module with children and parameters of its own (a class token...):
        # its FLOPs without those of its children.
        f = flops_of(name) - sum(flops_of(c) for c in children)
        rows.append({
            "name": name,
            "type": type(sub).__name__,
            "output_shape": shapes.get(name),
            "trainable_params": sum(p.numel() for p in own if p.requires_grad),
            "frozen_params": sum(p.numel() for p in own if not p.requires_grad),
            "flops": max(f, 0),
        })
    table = ModelSummary(pd.DataFrame(rows, columns=COLUMNS))
    params = list(module.parameters())
    table.attrs.update({
        "input_shape": tuple(shape),
        "total_params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in params if p.requires_grad),
        "frozen_params": sum(p.numel() for p in params if not p.requires_grad),
        "flops": flops.get("Global", 0),
        "receptive_field": tracker.last_conv,
    })
    return table


# --------------------------------------------------------------------------
# Receptive field
# --------------------------------------------------------------------------

def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


def _arg(args, kwargs, index, name, default):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _per_axis(value, n):
    if value is None:
        return None
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


class _ReceptiveField(TorchFunctionMode):
    """Receptive field and jump (input steps per output step) of every tensor
    computed from the input, per spatial axis.

    Written by hand: neither captum nor torch computes receptive fields.
    A convolution of kernel ``k``, dilation ``d`` and stride ``s`` maps
    ``(r, j)`` to ``(r + (k - 1) d j, s j)``; max/average pooling likewise;
    any other operation passes on the largest field and jump of its inputs
    (exact for chains of layers, and for residual sums whose branches
    align; for parallel branches of different kernels, the widest one).
    """

    _CONVS = {"conv1d", "conv2d", "conv3d", "convolution", "_convolution"}

    def __init__(self, x):
        super().__init__()
        n = x.ndim - 2
        self.info = {id(x): ((1,) * n, (1,) * n)}
        self.alive = [x]  # ids stay unique while the tensors live
        self.last_conv = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        sources = [self.info[id(t)] for t in _tensors((args, kwargs))
                   if id(t) in self.info]
        if not sources:
            return out
        n = len(sources[0][0])
        rf = tuple(max(s[0][i] for s in sources) for i in range(n))
        jump = tuple(max(s[1][i] for s in sources) for i in range(n))
        name = getattr(func, "__name__", "").lstrip("_") if func else ""
        kernel = stride = dilation = None
        is_conv = False
        if name in self._CONVS or getattr(func, "__name__", "") in self._CONVS:
            weight = _arg(args, kwargs, 1, "weight", None)
            if isinstance(weight, torch.Tensor) and weight.ndim == n + 2:
                kernel = tuple(weight.shape[2:])
                stride = _per_axis(_arg(args, kwargs, 3, "stride", 1), n)
                dilation = _per_axis(_arg(args, kwargs, 5, "dilation", 1), n)
                is_conv = True
        elif ("pool" in name and "adaptive" not in name
              and name.endswith(("1d", "2d", "3d"))):
            kernel = _per_axis(_arg(args, kwargs, 1, "kernel_size", None), n)
            stride = _per_axis(_arg(args, kwargs, 2, "stride", None), n) or kernel
            dilation = (_per_axis(_arg(args, kwargs, 4, "dilation", 1), n)
                        if name.startswith("max") else (1,) * n)
        if kernel is not None and len(kernel) == n:
            rf = tuple(r + (k - 1) * d * j
                       for r, k, d, j in zip(rf, kernel, dilation, jump))
            jump = tuple(j * s for j, s in zip(jump, stride))
            if is_conv:
                self.last_conv = rf
        for t in _tensors(out):
            self.info[id(t)] = (rf, jump)
            self.alive.append(t)
        return out
