"""A small DenseNet-BC (Huang et al., 2017)."""

from torch import nn

from ._layers import (
    Concat,
    as_tuple,
    check_input_size,
    conv_layer,
    fill_data_params,
    make_activation,
    pool_layer,
    pooled_head,
)
from ._layers import batch_norm as batch_norm_layer
from ._registry import register_model


def _bn_act_conv(in_channels, out_channels, kernel_size, *, batch_norm,
                 activation):
    """Pre-activation unit: (batch norm +) activation + convolution."""
    layers = [batch_norm_layer(2, in_channels)] if batch_norm else []
    layers += [make_activation(activation),
               conv_layer(2, in_channels, out_channels, kernel_size,
                          padding="same", bias=not batch_norm)]
    return nn.Sequential(*layers)


@fill_data_params
class DenseNet(nn.Module):
    """Stem convolution, dense blocks joined by transitions, global pooling.

    The CIFAR layout of Huang et al. Inside a dense block every layer sees
    the concatenation of all earlier feature maps and adds ``growth_rate``
    new ones; a layer is BN-activation-conv3x3, preceded with
    ``bottleneck=True`` (DenseNet-B) by a BN-activation-conv1x1 to
    ``4 * growth_rate`` channels. Between blocks a transition
    (BN-activation-conv1x1 keeping ``compression`` of the channels, then 2x2
    pooling that rounds up, so small inputs never vanish) halves the
    resolution. The last block is followed by BN-activation and global
    average pooling, so the network takes inputs of any size.

    Parameters
    ----------
    {data_params}
    growth_rate : int, default=12
        Feature maps each layer adds.
    layers_per_block : sequence of int, default=(4, 4, 4)
        Layers of each dense block (an int gives a single block).
    stem_channels : int, default=24
        Filters of the stem convolution (``2 * growth_rate`` in the paper).
    bottleneck : bool, default=True
        1x1 bottleneck convolution before each 3x3 one (DenseNet-B).
    compression : float, default=0.5
        Fraction of the channels a transition keeps, in (0, 1] (DenseNet-C).
    kernel_size : int, default=3
        Kernel of the stem and of the layers' main convolution.
    pooling : {'avg', 'max'}, default='avg'
        Pooling of the transitions.
    batch_norm : bool, default=True
        Batch normalisation before every convolution.
    dropout : float, default=0.0
        Dropout before each dense layer of the head.
    hidden_units : sequence of int, default=()
        Hidden layers of the head; empty for a single linear layer.
    activation : str, default='relu'
        Activation function (see ``skcnn.models.ACTIVATIONS``).
    """

    def __init__(self, *, in_channels, n_outputs, input_size, growth_rate=12,
                 layers_per_block=(4, 4, 4), stem_channels=24, bottleneck=True,
                 compression=0.5, kernel_size=3, pooling="avg", batch_norm=True,
                 dropout=0.0, hidden_units=(), activation="relu"):
        super().__init__()
        check_input_size(input_size, 2)
        layers_per_block = as_tuple(layers_per_block, "layers_per_block")
        if not 0 < compression <= 1:
            raise ValueError(f"compression must be in (0, 1]; got {compression!r}.")
        unit = dict(batch_norm=batch_norm, activation=activation)
        layers = [conv_layer(2, in_channels, stem_channels, kernel_size,
                             padding="same", bias=not batch_norm)]
        c = stem_channels
        for i, n_layers in enumerate(layers_per_block):
            if i > 0:
                c_out = max(1, int(c * compression))
                layers += [_bn_act_conv(c, c_out, 1, **unit),
                           pool_layer(2, pooling, 2)]
                c = c_out
            for _ in range(n_layers):
                if bottleneck:
                    new = nn.Sequential(
                        _bn_act_conv(c, 4 * growth_rate, 1, **unit),
                        _bn_act_conv(4 * growth_rate, growth_rate, kernel_size,
                                     **unit))
                else:
                    new = _bn_act_conv(c, growth_rate, kernel_size, **unit)
                layers.append(Concat(nn.Identity(), new))
                c += growth_rate
        if batch_norm:
            layers.append(batch_norm_layer(2, c))
        layers.append(make_activation(activation))
        self.features = nn.Sequential(*layers)
        self.head = pooled_head(2, c, hidden_units, n_outputs,
                                activation=activation, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


@register_model("densenet", ndim=2)
def densenet(*, in_channels, n_outputs, input_size, growth_rate=12,
             layers_per_block=(4, 4, 4), stem_channels=24, bottleneck=True,
             compression=0.5, kernel_size=3, pooling="avg", batch_norm=True,
             dropout=0.0, hidden_units=(), activation="relu"):
    """A small DenseNet-BC: dense blocks of ``layers_per_block`` layers.

    Knobs: ``growth_rate``, ``layers_per_block``, ``stem_channels``,
    ``bottleneck``, ``compression``, ``kernel_size``, ``pooling`` (of the
    transitions), ``batch_norm``, ``dropout`` and ``hidden_units`` (the head
    after global average pooling) and ``activation``. Widths follow from
    ``growth_rate``, so there is no ``channels`` knob. See :class:`DenseNet`.
    """
    return DenseNet(in_channels=in_channels, n_outputs=n_outputs,
                    input_size=input_size, growth_rate=growth_rate,
                    layers_per_block=layers_per_block, stem_channels=stem_channels,
                    bottleneck=bottleneck, compression=compression,
                    kernel_size=kernel_size, pooling=pooling,
                    batch_norm=batch_norm, dropout=dropout,
                    hidden_units=hidden_units, activation=activation)
