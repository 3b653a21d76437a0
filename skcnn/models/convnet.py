"""The default configurable pyramid: [conv-BN-activation-pool] blocks + dense head."""

from torch import nn

from ._layers import as_tuple, conv_bn_act, dense_head, flat_size, per_stage, pool_layer
from ._registry import register_model


class ConvNet(nn.Module):
    """Blocks of convolution, batch norm, activation and pooling, then an MLP.

    Block ``i`` has ``convs_per_block`` convolutions with ``channels[i]``
    filters of size ``kernel_size`` ('same' padding), then a 2x pooling. The
    flattened feature map feeds a dense head with ``hidden_units``.

    Parameters
    ----------
    ndim : {1, 2}
        1 for signals, 2 for images.
    in_channels : int
        Input channels.
    n_outputs : int
        Number of logits or regression outputs.
    input_size : tuple of int
        Spatial size of one input (``(H, W)`` or ``(L,)``).
    channels : sequence of int, default=(32, 64)
        Filters of each convolutional block.
    kernel_size : int, default=3
        Size of every convolution kernel.
    pooling : {'max', 'avg'}, default='max'
        Pooling after each block.
    batch_norm : bool, default=True
        Batch normalisation after every convolution.
    dropout : float, default=0.25
        Dropout before each dense layer.
    hidden_units : sequence of int, default=(128,)
        Hidden layers of the dense head.
    activation : str, default='relu'
        Activation function (see ``skcnn.models.ACTIVATIONS``).
    convs_per_block : int, default=1
        Convolutions per block before pooling.
    separable : bool, default=False
        Depthwise separable convolutions (a per-channel convolution, then
        a 1x1 one across channels; Xception, MobileNet) in place of every
        convolution but the first, which stays full as in those networks
        (on one or three input channels a per-channel convolution would
        learn one filter per channel). Fewer weights and operations; from
        an estimator: ``module__separable=True``.
    dilation : int or sequence of int, default=1
        Dilation of the convolutions, one for all blocks or one per block
        (``(1, 2, 4)``: WaveNet's doubling): a kernel of size ``k`` spans
        ``dilation * (k - 1) + 1`` steps with ``k`` weights. From an
        estimator: ``module__dilation=(1, 2)``. Start at 1: a first block
        of dilation ``d > 1`` reads only every ``d``-th step around each
        position, and the pooling after it fills only part of the gaps.
    """

    def __init__(self, ndim, *, in_channels, n_outputs, input_size,
                 channels=(32, 64), kernel_size=3, pooling="max", batch_norm=True,
                 dropout=0.25, hidden_units=(128,), activation="relu",
                 convs_per_block=1, separable=False, dilation=1):
        super().__init__()
        channels = as_tuple(channels, "channels")
        dilations = per_stage(dilation, len(channels), "dilation")
        hidden_units = () if hidden_units in (None, 0) else as_tuple(
            hidden_units, "hidden_units")
        layers = []
        c_in = in_channels
        for c_out, d in zip(channels, dilations):
            for _ in range(convs_per_block):
                layers.append(conv_bn_act(ndim, c_in, c_out, kernel_size,
                                          activation=activation,
                                          batch_norm_=batch_norm,
                                          separable=separable and bool(layers),
                                          dilation=d))
                c_in = c_out
            layers.append(pool_layer(ndim, pooling, 2))
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_flat = flat_size(self.features, in_channels, input_size)
        self.head = dense_head(n_flat, hidden_units, n_outputs,
                               activation=activation, dropout=dropout)

    def forward(self, x):
        return self.head(self.features(x))


def _build(ndim, in_channels, n_outputs, input_size, channels, kernel_size,
           pooling, batch_norm, dropout, hidden_units, activation, convs_per_block,
           separable, dilation):
    return ConvNet(ndim, in_channels=in_channels, n_outputs=n_outputs,
                   input_size=input_size, channels=channels,
                   kernel_size=kernel_size, pooling=pooling,
                   batch_norm=batch_norm, dropout=dropout,
                   hidden_units=hidden_units, activation=activation,
                   convs_per_block=convs_per_block, separable=separable,
                   dilation=dilation)


@register_model("convnet", ndim=2)
def convnet(*, in_channels, n_outputs, input_size, channels=(32, 64),
            kernel_size=3, pooling="max", batch_norm=True, dropout=0.25,
            hidden_units=(128,), activation="relu", convs_per_block=1,
            separable=False, dilation=1):
    """Configurable image pyramid (the default of ``CNNClassifier``).

    See :class:`ConvNet` for the parameters.
    """
    return _build(2, in_channels, n_outputs, input_size, channels, kernel_size,
                  pooling, batch_norm, dropout, hidden_units, activation,
                  convs_per_block, separable, dilation)


@register_model("convnet", ndim=1)
def convnet1d(*, in_channels, n_outputs, input_size, channels=(32, 64),
              kernel_size=5, pooling="max", batch_norm=True, dropout=0.25,
              hidden_units=(128,), activation="relu", convs_per_block=1,
              separable=False, dilation=1):
    """Configurable signal pyramid (the default of ``Conv1DClassifier``).

    See :class:`ConvNet` for the parameters.
    """
    return _build(1, in_channels, n_outputs, input_size, channels, kernel_size,
                  pooling, batch_norm, dropout, hidden_units, activation,
                  convs_per_block, separable, dilation)
