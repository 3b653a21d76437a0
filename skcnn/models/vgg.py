"""VGG-style networks (Simonyan & Zisserman, 2015), sized for a CPU."""

from ._layers import check_input_size, fill_data_params
from ._registry import register_model
from .convnet import ConvNet


@fill_data_params
class VGG(ConvNet):
    """Stages of 3x3 conv-BN-activation layers, each closed by 2x2 max pooling.

    VGG's layout is the :class:`~skcnn.models.convnet.ConvNet` pyramid with
    several convolutions per stage, so this class only sets VGG's defaults:
    two convolutions per stage (as in VGG-16's first stages), batch norm (as
    in torchvision's ``vgg*_bn``) and a dropout-regularised dense head. Widths
    are 32-64-128 instead of 64-...-512 and the head has one hidden layer of
    256 instead of two of 4096, so it trains on a CPU. Pooling rounds up, so
    an 8x8 input goes 8 -> 4 -> 2 -> 1 and a 1x1 input stays 1x1.

    Parameters
    ----------
    {data_params}
    channels : sequence of int, default=(32, 64, 128)
        Filters of the convolutions of each stage.
    convs_per_block : int, default=2
        Convolutions per stage before its pooling.
    kernel_size : int, default=3
        Size of every convolution kernel ('same' padding).
    pooling : {'max', 'avg'}, default='max'
        Pooling closing each stage.
    batch_norm : bool, default=True
        Batch normalisation after every convolution.
    dropout : float, default=0.5
        Dropout before each dense layer.
    hidden_units : sequence of int, default=(256,)
        Hidden layers of the dense head.
    activation : str, default='relu'
        Activation function (see ``skcnn.models.ACTIVATIONS``).
    """

    def __init__(self, *, in_channels, n_outputs, input_size,
                 channels=(32, 64, 128), convs_per_block=2, kernel_size=3,
                 pooling="max", batch_norm=True, dropout=0.5, hidden_units=(256,),
                 activation="relu"):
        super().__init__(2, in_channels=in_channels, n_outputs=n_outputs,
                         input_size=check_input_size(input_size, 2),
                         channels=channels, kernel_size=kernel_size,
                         pooling=pooling, batch_norm=batch_norm, dropout=dropout,
                         hidden_units=hidden_units, activation=activation,
                         convs_per_block=convs_per_block)


@register_model("vgg", ndim=2)
def vgg(*, in_channels, n_outputs, input_size, channels=(32, 64, 128),
        convs_per_block=2, kernel_size=3, pooling="max", batch_norm=True,
        dropout=0.5, hidden_units=(256,), activation="relu"):
    """A small VGG: ``len(channels)`` stages of ``convs_per_block`` convolutions.

    Knobs: ``channels`` (filters per stage), ``convs_per_block``,
    ``kernel_size``, ``pooling``, ``batch_norm``, ``dropout``,
    ``hidden_units`` (the dense head) and ``activation``. See :class:`VGG`.
    """
    return VGG(in_channels=in_channels, n_outputs=n_outputs, input_size=input_size,
               channels=channels, convs_per_block=convs_per_block,
               kernel_size=kernel_size, pooling=pooling, batch_norm=batch_norm,
               dropout=dropout, hidden_units=hidden_units, activation=activation)
