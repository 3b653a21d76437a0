"""FCN: the fully convolutional network of Wang et al. (2017) for time series.

Wang, Yan and Oates, "Time series classification from scratch with deep
neural networks: a strong baseline", IJCNN 2017. Three convolution blocks
(128, 256 and 128 filters of sizes 8, 5 and 3, each with batch norm and
ReLU), global average pooling and a linear layer. Takes series of any
length, and series of unequal length exactly through a mask.
"""

from ._layers import as_tuple
from ._masking import ConvNormAct, MaskedGAPNet, fill_1d_doc, per_layer
from ._registry import register_model


@fill_1d_doc
class FCN(MaskedGAPNet):
    """Fully convolutional network for series classification or regression.

    Parameters
    ----------
    {data_params}
    channels : sequence of int, default=(128, 256, 128)
        Filters of each convolution block.
    kernel_size : int or sequence of int, default=(8, 5, 3)
        Kernel size of each block (one int for all).
    batch_norm : bool, default=True
        Batch normalisation after every convolution.
    dilation : int or sequence of int, default=1
        Dilation of each block's convolution (one int for all): ``(1, 2,
        4)`` widens the receptive field from 14 to 24 steps with the same
        weights (from an estimator: ``module__dilation=(1, 2, 4)``). Start
        at 1, as WaveNet does: with even dilations only, every other input
        step never reaches the output.
    {head_params}

    {forward_note}
    """

    def __init__(self, *, in_channels, n_outputs, channels=(128, 256, 128),
                 kernel_size=(8, 5, 3), batch_norm=True, dropout=0.0,
                 activation="relu", dilation=1):
        channels = as_tuple(channels, "channels")
        kernel_sizes = per_layer(kernel_size, len(channels), "kernel_size")
        dilations = per_layer(dilation, len(channels), "dilation")
        blocks = []
        c_in = in_channels
        for c_out, k, d in zip(channels, kernel_sizes, dilations):
            blocks.append(ConvNormAct(c_in, c_out, k, batch_norm=batch_norm,
                                      activation=activation, dilation=d))
            c_in = c_out
        super().__init__(blocks, c_in, n_outputs, dropout)


@register_model("fcn", ndim=1)
def fcn(*, in_channels, n_outputs, input_size, channels=(128, 256, 128),
        kernel_size=(8, 5, 3), batch_norm=True, dropout=0.0, activation="relu",
        dilation=1):
    """FCN of Wang et al. (2017); defaults as published.

    ``input_size`` is not used: global average pooling takes any length.
    See :class:`FCN` for the other parameters.
    """
    return FCN(in_channels=in_channels, n_outputs=n_outputs, channels=channels,
               kernel_size=kernel_size, batch_norm=batch_norm, dropout=dropout,
               activation=activation, dilation=dilation)
