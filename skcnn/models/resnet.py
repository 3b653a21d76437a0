"""A small ResNet (He et al., 2016) with basic residual blocks."""

from torch import nn

from ._layers import (
    Residual,
    as_tuple,
    check_input_size,
    conv_bn_act,
    conv_layer,
    fill_data_params,
    per_stage,
    pooled_head,
)
from ._layers import batch_norm as batch_norm_layer
from ._registry import register_model


def _conv_bn(in_channels, out_channels, kernel_size, *, stride, batch_norm):
    """Convolution (+ batch norm) without activation: before a residual sum."""
    padding = kernel_size // 2
    layers = [conv_layer(2, in_channels, out_channels, kernel_size, stride=stride,
                         padding=padding, bias=not batch_norm)]
    if batch_norm:
        layers.append(batch_norm_layer(2, out_channels))
    return nn.Sequential(*layers)


@fill_data_params
class ResNet(nn.Module):
    """Stem, stages of basic residual blocks, global average pooling, head.

    The CIFAR-style layout of He et al.: a 3x3 stem convolution (no stem
    pooling, inputs are small), then one stage per entry of ``channels``.
    A basic block is conv-BN-activation, conv-BN, plus a shortcut, then the
    activation. The shortcut is the identity, or a 1x1 projection with batch
    norm where the width or the resolution changes. The first block of every
    stage after the first downsamples with stride 2; strided convolutions
    are padded so any size, 1x1 included, stays at least 1. The network ends
    with global average pooling, so it takes inputs of any size.

    Parameters
    ----------
    {data_params}
    channels : sequence of int, default=(32, 64, 128)
        Filters of each stage (the stem has ``channels[0]``).
    blocks_per_stage : int or sequence of int, default=2
        Basic blocks per stage, or one count per stage. 2 with the default
        3 stages is a ResNet-14 (``(2, 2, 2, 2)`` with 4 stages, ResNet-18).
    kernel_size : int, default=3
        Kernel of the stem and block convolutions.
    batch_norm : bool, default=True
        Batch normalisation after every convolution.
    dropout : float, default=0.0
        Dropout before each dense layer of the head.
    hidden_units : sequence of int, default=()
        Hidden layers of the head; empty for a single linear layer.
    activation : str, default='relu'
        Activation function (see ``skcnn.models.ACTIVATIONS``).
    """

    def __init__(self, *, in_channels, n_outputs, input_size,
                 channels=(32, 64, 128), blocks_per_stage=2, kernel_size=3,
                 batch_norm=True, dropout=0.0, hidden_units=(), activation="relu"):
        super().__init__()
        check_input_size(input_size, 2)
        channels = as_tuple(channels, "channels")
        blocks = per_stage(blocks_per_stage, len(channels), "blocks_per_stage")
        layers = [conv_bn_act(2, in_channels, channels[0], kernel_size,
                              activation=activation, batch_norm_=batch_norm)]
        c_in = channels[0]
        for stage, (c_out, n_blocks) in enumerate(zip(channels, blocks)):
            for block in range(n_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                body = nn.Sequential(
                    conv_bn_act(2, c_in, c_out, kernel_size, stride=stride,
                                activation=activation, batch_norm_=batch_norm),
                    _conv_bn(c_out, c_out, kernel_size, stride=1,
                             batch_norm=batch_norm),
                )
                shortcut = None
                if stride != 1 or c_in != c_out:
                    shortcut = _conv_bn(c_in, c_out, 1, stride=stride,
                                        batch_norm=batch_norm)
                layers.append(Residual(body, shortcut, activation))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = pooled_head(2, c_in, hidden_units, n_outputs,
                                activation=activation, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


@register_model("resnet", ndim=2)
def resnet(*, in_channels, n_outputs, input_size, channels=(32, 64, 128),
           blocks_per_stage=2, kernel_size=3, batch_norm=True, dropout=0.0,
           hidden_units=(), activation="relu"):
    """A small ResNet: ``len(channels)`` stages of ``blocks_per_stage`` blocks.

    Knobs: ``channels`` (filters per stage), ``blocks_per_stage``,
    ``kernel_size``, ``batch_norm``, ``dropout`` and ``hidden_units`` (the
    head after global average pooling) and ``activation``. Downsampling is
    by strided convolution, so there is no ``pooling`` knob. See
    :class:`ResNet`.
    """
    return ResNet(in_channels=in_channels, n_outputs=n_outputs,
                  input_size=input_size, channels=channels,
                  blocks_per_stage=blocks_per_stage, kernel_size=kernel_size,
                  batch_norm=batch_norm, dropout=dropout,
                  hidden_units=hidden_units, activation=activation)
