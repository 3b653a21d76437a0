"""A small GoogLeNet (Szegedy et al., 2015) built from inception modules."""

from torch import nn

from ._layers import (
    Concat,
    as_tuple,
    check_input_size,
    conv_bn_act,
    fill_data_params,
    per_stage,
    pool_layer,
    pooled_head,
)
from ._registry import register_model


def _inception_module(in_channels, out_channels, *, pooling, batch_norm,
                      activation):
    """Four parallel branches whose outputs add up to ``out_channels``.

    The split follows GoogLeNet's module 3a (64/128/32/32 of 256): a quarter
    for the 1x1 branch, an eighth each for the 5x5 and the pooling branches,
    the rest (about half) for the 3x3 branch. The 3x3 and 5x5 convolutions
    are preceded by a 1x1 bottleneck of half their width.
    """
    n_1x1 = out_channels // 4
    n_5x5 = n_pool = max(1, out_channels // 8)
    n_3x3 = out_channels - n_1x1 - n_5x5 - n_pool

    def cba(c_in, c_out, kernel_size):
        return conv_bn_act(2, c_in, c_out, kernel_size, activation=activation,
                           batch_norm_=batch_norm)

    def reduced(c_out, kernel_size):
        c_mid = max(1, c_out // 2)
        return nn.Sequential(cba(in_channels, c_mid, 1),
                             cba(c_mid, c_out, kernel_size))

    return Concat(
        cba(in_channels, n_1x1, 1),
        reduced(n_3x3, 3),
        reduced(n_5x5, 5),
        nn.Sequential(pool_layer(2, pooling, 3, stride=1, padding=1),
                      cba(in_channels, n_pool, 1)),
    )


@fill_data_params
class Inception(nn.Module):
    """Stem convolution, stages of inception modules, global average pooling.

    Each inception module runs a 1x1 convolution, a 1x1 -> 3x3, a 1x1 -> 5x5
    and a 3x3 pooling -> 1x1 branch side by side and concatenates them (see
    GoogLeNet). Every convolution is conv-BN-activation with 'same' padding.
    Stages are separated by a 2x2 pooling that rounds up, so small inputs
    (8x8, 1x1, ``1 x d``) keep a non-empty feature map. GoogLeNet's 7x7 stem,
    stem pooling and auxiliary classifiers are left out: inputs here are small.
    The network ends with global average pooling, so it takes inputs of any
    size.

    Parameters
    ----------
    {data_params}
    channels : sequence of int, default=(64, 128)
        Output channels of the modules of each stage (at least 4).
    modules_per_stage : int or sequence of int, default=2
        Inception modules per stage, or one count per stage.
    stem_channels : int, default=32
        Filters of the 3x3 stem convolution.
    pooling : {'max', 'avg'}, default='max'
        Pooling of the modules' pooling branch and between stages.
    batch_norm : bool, default=True
        Batch normalisation after every convolution (as in BN-Inception).
    dropout : float, default=0.2
        Dropout before each dense layer of the head.
    hidden_units : sequence of int, default=()
        Hidden layers of the head; empty for a single linear layer.
    activation : str, default='relu'
        Activation function (see ``skcnn.models.ACTIVATIONS``).
    """

    def __init__(self, *, in_channels, n_outputs, input_size, channels=(64, 128),
                 modules_per_stage=2, stem_channels=32, pooling="max",
                 batch_norm=True, dropout=0.2, hidden_units=(), activation="relu"):
        super().__init__()
        check_input_size(input_size, 2)
        channels = as_tuple(channels, "channels")
        if min(channels) < 4:
            raise ValueError(
                f"channels must be at least 4 (one per branch); got {channels!r}."
            )
        modules = per_stage(modules_per_stage, len(channels), "modules_per_stage")
        layers = [conv_bn_act(2, in_channels, stem_channels, 3,
                              activation=activation, batch_norm_=batch_norm)]
        c_in = stem_channels
        for stage, (c_out, n_modules) in enumerate(zip(channels, modules)):
            if stage > 0:
                layers.append(pool_layer(2, pooling, 2))
            for _ in range(n_modules):
                layers.append(_inception_module(c_in, c_out, pooling=pooling,
                                                batch_norm=batch_norm,
                                                activation=activation))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = pooled_head(2, c_in, hidden_units, n_outputs,
                                activation=activation, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


@register_model("inception", ndim=2)
def inception(*, in_channels, n_outputs, input_size, channels=(64, 128),
              modules_per_stage=2, stem_channels=32, pooling="max",
              batch_norm=True, dropout=0.2, hidden_units=(), activation="relu"):
    """A small GoogLeNet: a stem, then ``len(channels)`` stages of modules.

    Knobs: ``channels`` (output width of the modules of each stage),
    ``modules_per_stage``, ``stem_channels``, ``pooling`` (pooling branch and
    downsampling), ``batch_norm``, ``dropout`` and ``hidden_units`` (the head
    after global average pooling) and ``activation``. The branch kernels are
    GoogLeNet's 1, 3 and 5, so there is no ``kernel_size`` knob. See
    :class:`Inception`.
    """
    return Inception(in_channels=in_channels, n_outputs=n_outputs,
                     input_size=input_size, channels=channels,
                     modules_per_stage=modules_per_stage,
                     stem_channels=stem_channels, pooling=pooling,
                     batch_norm=batch_norm, dropout=dropout,
                     hidden_units=hidden_units, activation=activation)
