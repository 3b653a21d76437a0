"""ResNet for time series, after Wang et al. (2017).

Wang, Yan and Oates, "Time series classification from scratch with deep
neural networks: a strong baseline", IJCNN 2017. Three residual blocks of
64, 128 and 128 filters; each block has three convolutions of sizes 8, 5
and 3 with batch norm (ReLU after the first two), a shortcut (1x1
convolution + batch norm when the channels change, batch norm alone
otherwise) and a ReLU after the sum. Global average pooling and a linear
layer follow. Takes series of any length, and series of unequal length
exactly through a mask.
"""

from torch import nn

from ._layers import as_tuple
from ._masking import ConvNormAct, MaskedGAPNet, NormAct, fill_1d_doc
from ._registry import register_model


class ResidualBlock1d(nn.Module):
    """Convolutions with 'same' padding plus a shortcut, then the activation.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel_sizes : sequence of int
        Kernel size of each convolution of the main path.
    batch_norm : bool
        Batch normalisation after every convolution and on the shortcut.
    activation : str
        Activation after every convolution but the last, and after the sum.
    """

    def __init__(self, in_channels, out_channels, kernel_sizes, *, batch_norm,
                 activation):
        super().__init__()
        convs = []
        c_in = in_channels
        for i, k in enumerate(kernel_sizes):
            last = i == len(kernel_sizes) - 1
            convs.append(ConvNormAct(c_in, out_channels, k, batch_norm=batch_norm,
                                     activation=None if last else activation))
            c_in = out_channels
        self.convs = nn.ModuleList(convs)
        if in_channels != out_channels:
            self.shortcut = ConvNormAct(in_channels, out_channels, 1,
                                        batch_norm=batch_norm, activation=None)
        else:
            self.shortcut = NormAct(out_channels, batch_norm, None)
        self.post = NormAct(out_channels, False, activation)

    def forward(self, x, mask=None):
        """Apply the block to ``x`` (n, C, L) with real steps ``mask`` (n, L)."""
        out = x
        for conv in self.convs:
            out = conv(out, mask)
        return self.post(out + self.shortcut(x, mask), mask)


@fill_1d_doc
class ResNet1d(MaskedGAPNet):
    """Residual network for series classification or regression.

    Parameters
    ----------
    {data_params}
    channels : sequence of int, default=(64, 128, 128)
        Filters of each residual block.
    kernel_size : int or sequence of int, default=(8, 5, 3)
        Kernel size of each convolution inside a block (its length sets the
        number of convolutions per block).
    batch_norm : bool, default=True
        Batch normalisation after every convolution and on the shortcuts.
    {head_params}

    {forward_note}
    """

    def __init__(self, *, in_channels, n_outputs, channels=(64, 128, 128),
                 kernel_size=(8, 5, 3), batch_norm=True, dropout=0.0,
                 activation="relu"):
        channels = as_tuple(channels, "channels")
        kernel_sizes = as_tuple(kernel_size, "kernel_size")
        blocks = []
        c_in = in_channels
        for c_out in channels:
            blocks.append(ResidualBlock1d(c_in, c_out, kernel_sizes,
                                          batch_norm=batch_norm,
                                          activation=activation))
            c_in = c_out
        super().__init__(blocks, c_in, n_outputs, dropout)


@register_model("resnet", ndim=1)
def resnet(*, in_channels, n_outputs, input_size, channels=(64, 128, 128),
           kernel_size=(8, 5, 3), batch_norm=True, dropout=0.0,
           activation="relu"):
    """ResNet of Wang et al. (2017); defaults as published.

    ``input_size`` is not used: global average pooling takes any length.
    See :class:`ResNet1d` for the other parameters.
    """
    return ResNet1d(in_channels=in_channels, n_outputs=n_outputs,
                    channels=channels, kernel_size=kernel_size,
                    batch_norm=batch_norm, dropout=dropout,
                    activation=activation)
