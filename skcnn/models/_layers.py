"""Small building blocks shared by the architecture families."""

import torch
from torch import nn

from .._docs import fill_doc

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,  # Keras's name for SiLU (x * sigmoid(x))
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}

POOLINGS = ("max", "avg")


def make_activation(name):
    """Return a new activation module for ``name`` (a key of ``ACTIVATIONS``)."""
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}."
        ) from None


def conv_layer(ndim, *args, **kwargs):
    """``nn.Conv1d`` or ``nn.Conv2d``."""
    return (nn.Conv1d if ndim == 1 else nn.Conv2d)(*args, **kwargs)


def batch_norm(ndim, num_features):
    """``nn.BatchNorm1d`` or ``nn.BatchNorm2d``."""
    return (nn.BatchNorm1d if ndim == 1 else nn.BatchNorm2d)(num_features)


def pool_layer(ndim, kind, kernel_size=2, stride=None, padding=0):
    """Max or average pooling that never shrinks a size-1 axis to zero.

    ``ceil_mode=True`` keeps every output size at least 1, so a network
    built for small inputs (8x8 digits, or a ``1 x d`` strip of tabular
    features) does not fail on a too-small feature map.
    """
    if kind not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {kind!r}.")
    if kind == "max":
        cls = nn.MaxPool1d if ndim == 1 else nn.MaxPool2d
        return cls(kernel_size, stride=stride, padding=padding, ceil_mode=True)
    cls = nn.AvgPool1d if ndim == 1 else nn.AvgPool2d
    return cls(
        kernel_size, stride=stride, padding=padding, ceil_mode=True,
        count_include_pad=False,
    )


def global_pool(ndim, kind="avg"):
    """Global average or max pooling followed by flattening."""
    if kind not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {kind!r}.")
    if kind == "avg":
        pool = nn.AdaptiveAvgPool1d(1) if ndim == 1 else nn.AdaptiveAvgPool2d(1)
    else:
        pool = nn.AdaptiveMaxPool1d(1) if ndim == 1 else nn.AdaptiveMaxPool2d(1)
    return nn.Sequential(pool, nn.Flatten())


def conv_bn_act(ndim, in_channels, out_channels, kernel_size, *, activation="relu",
                batch_norm_=True, stride=1, padding="same", groups=1, separable=False,
                dilation=1):
    """Convolution (+ batch norm) + activation.

    ``padding='same'`` keeps the spatial size (for stride 1): an odd or even
    kernel both work. ``separable=True`` makes the convolution depthwise
    separable (Xception's and MobileNet's; Keras's ``SeparableConv2D``): a
    ``kernel_size`` convolution of each input channel alone, then a 1x1
    convolution that mixes the channels, with ``k * C_in + C_in * C_out``
    weights instead of ``k * C_in * C_out`` (``k`` the kernel's size).
    ``dilation`` spaces the kernel's taps (``dilation - 1`` steps between
    them): a receptive field of ``dilation * (kernel_size - 1) + 1`` with
    the same weights.
    """
    if padding == "same" and stride != 1:
        padding = dilation * (kernel_size // 2)
    layers = []
    if padding == "same" and dilation > 1:
        # Explicit zeros, as torch's 'same' places them (the odd one on the
        # right): ONNX Runtime refuses 'same' (auto_pad) with a dilation.
        total = dilation * (kernel_size - 1)
        left, right = total // 2, total - total // 2
        padding = left
        if left != right:
            layers.append(nn.ConstantPad1d((left, right), 0.0) if ndim == 1
                          else nn.ZeroPad2d((left, right, left, right)))
            padding = 0
    if separable:
        layers += [conv_layer(ndim, in_channels, in_channels, kernel_size, stride=stride,
                             padding=padding, dilation=dilation, groups=in_channels,
                             bias=False),
                  conv_layer(ndim, in_channels, out_channels, 1, groups=groups,
                             bias=not batch_norm_)]
    else:
        layers += [conv_layer(ndim, in_channels, out_channels, kernel_size,
                              stride=stride, padding=padding, dilation=dilation,
                              groups=groups, bias=not batch_norm_)]
    if batch_norm_:
        layers.append(batch_norm(ndim, out_channels))
    layers.append(make_activation(activation))
    return nn.Sequential(*layers)


def dense_head(in_features, hidden_units, n_outputs, *, activation="relu",
               dropout=0.0):
    """A multi-layer perceptron head: [dropout, linear, activation]* + linear.

    Parameters
    ----------
    in_features : int
        Size of the flattened features.
    hidden_units : sequence of int
        Width of each hidden layer; empty for a single linear layer.
    n_outputs : int
        Number of logits (classes) or regression outputs.
    activation : str, default='relu'
        Activation after each hidden layer.
    dropout : float, default=0.0
        Dropout probability before each linear layer.
    """
    layers = []
    for units in hidden_units:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(in_features, units), make_activation(activation)]
        in_features = units
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_features, n_outputs))
    return nn.Sequential(*layers)


@torch.no_grad()
def dry_run(module, sample_shape, n=2, device="cpu"):
    """One forward pass of ``n`` zero samples in eval mode; its output.

    Sizes lazy layers (``nn.LazyLinear``) and finds the shapes a network
    produces; the module's training mode is restored afterwards.

    Parameters
    ----------
    module : nn.Module
    sample_shape : tuple of int
        Shape of one input sample, ``(C, *spatial)``.
    n : int, default=2
        Samples in the batch (two, so that batch norm in training code
        paths would see a batch).
    device : str, default='cpu'

    Returns
    -------
    output : Tensor
    """
    was_training = module.training
    module.eval()
    try:
        return module(torch.zeros((n,) + tuple(sample_shape), device=device))
    finally:
        module.train(was_training)


def flat_size(features, in_channels, input_size):
    """Number of features ``features`` outputs per sample, by a dry forward pass.

    The user never computes a flatten size: builders call this on their
    feature extractor with a zero input of the data's shape.
    """
    return int(dry_run(features, (in_channels, *input_size), n=1)[0].numel())


def as_tuple(value, name):
    """Normalise an int or a sequence of ints to a tuple of ints."""
    if isinstance(value, int):
        return (value,)
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int or a sequence of ints; got {value!r}."
        ) from None
    if any(v <= 0 for v in out):
        raise ValueError(f"{name} must hold positive integers; got {value!r}.")
    return out


def check_input_size(input_size, ndim):
    """Validate ``input_size`` as ``ndim`` positive ints and return it as a tuple."""
    size = as_tuple(input_size, "input_size")
    if len(size) != ndim:
        kind = "(H, W) for an image" if ndim == 2 else "(L,) for a signal"
        raise ValueError(
            f"input_size must be {kind} architecture; got {input_size!r}."
        )
    return size


class Concat(nn.Module):
    """Run every branch on the same input and concatenate the outputs on channels.

    An inception module is ``Concat(branch_1x1, branch_3x3, ...)``; a DenseNet
    layer is ``Concat(nn.Identity(), layer)`` (its input plus its new features).

    Parameters
    ----------
    *branches : nn.Module
        Modules that keep the spatial size of their input.
    """

    def __init__(self, *branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Residual(nn.Module):
    """``activation(body(x) + shortcut(x))``: a residual connection.

    Parameters
    ----------
    body : nn.Module
        The residual branch.
    shortcut : nn.Module, default=None
        The skip branch (e.g. a strided 1x1 projection); ``None`` is the identity.
    activation : str, default=None
        Activation after the sum (see ``ACTIVATIONS``); ``None`` for none.
    """

    def __init__(self, body, shortcut=None, activation=None):
        super().__init__()
        self.body = body
        self.shortcut = nn.Identity() if shortcut is None else shortcut
        self.activation = (nn.Identity() if activation is None
                           else make_activation(activation))

    def forward(self, x):
        return self.activation(self.body(x) + self.shortcut(x))


def per_stage(value, n_stages, name):
    """An int (the same for every stage) or one int per stage, as a tuple."""
    out = as_tuple(value, name)
    if len(out) == 1:
        out *= n_stages
    if len(out) != n_stages:
        raise ValueError(
            f"{name} must be an int or one int per stage ({n_stages} stages); "
            f"got {value!r}."
        )
    return out


def pooled_head(ndim, in_channels, hidden_units, n_outputs, *, activation="relu",
                dropout=0.0):
    """Global average pooling then :func:`dense_head`: the end of a network
    whose feature maps can have any size (ResNet, Inception, DenseNet).

    ``hidden_units`` may be ``None`` or ``0`` for no hidden layer.
    """
    hidden_units = () if hidden_units in (None, 0) else as_tuple(
        hidden_units, "hidden_units")
    return nn.Sequential(
        global_pool(ndim, "avg"),
        dense_head(in_channels, hidden_units, n_outputs, activation=activation,
                   dropout=dropout),
    )


DATA_PARAMS_DOC = """\
in_channels : int
        Input channels.
    n_outputs : int
        Number of logits or regression outputs.
    input_size : tuple of int
        Spatial size of one input: ``(H, W)`` for images, ``(L,)`` for
        signals."""


# Decorator: puts the shared entries where a docstring says ``{data_params}``.
fill_data_params = fill_doc(data_params=DATA_PARAMS_DOC)
