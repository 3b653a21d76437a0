"""InceptionTime of Ismail Fawaz et al. (2020) for time series.

Ismail Fawaz et al., "InceptionTime: finding AlexNet for time series
classification", Data Mining and Knowledge Discovery 34, 2020. Six inception
modules; each module applies a 1x1 bottleneck to 32 channels (when the input
has more than one channel), three parallel convolutions (kernels 40, 20 and
10 in the paper; 39, 19 and 9 here so that 'same' padding is symmetric) and
a max-pool(3) -> 1x1 convolution branch, 32 filters each, concatenated, then
batch norm and ReLU. A residual shortcut (1x1 convolution + batch norm)
spans every three modules. Global average pooling and a linear layer
follow. The published classifier is an ensemble of five such networks
(``n_ensemble=5``). Takes series of any length, and series of unequal length
exactly through a mask.
"""

import numbers

import torch
from torch import nn

from ._ensemble import Ensemble
from ._layers import as_tuple
from ._masking import (
    ConvNormAct,
    MaskedGAPNet,
    NormAct,
    SameConv1d,
    fill_1d_doc,
    masked_max_pool_same,
)
from ._registry import register_model


class InceptionModule(nn.Module):
    """Bottleneck, parallel convolutions and a max-pool branch, concatenated.

    Parameters
    ----------
    in_channels : int
        Channels in.
    channels : int
        Filters of each branch; the output has
        ``channels * (len(kernel_sizes) + 1)`` channels.
    kernel_sizes : sequence of int
        Kernel size of each convolution branch.
    bottleneck : int
        Channels of the 1x1 bottleneck, used when ``in_channels > 1``;
        0 for none.
    batch_norm : bool
        Batch normalisation after the concatenation.
    activation : str
        Activation after the normalisation.
    """

    def __init__(self, in_channels, channels, kernel_sizes, *, bottleneck,
                 batch_norm, activation):
        super().__init__()
        use_bottleneck = bool(bottleneck) and in_channels > 1
        self.bottleneck = (nn.Conv1d(in_channels, bottleneck, 1, bias=False)
                           if use_bottleneck else None)
        c_mid = bottleneck if use_bottleneck else in_channels
        self.convs = nn.ModuleList(
            SameConv1d(c_mid, channels, k, bias=not batch_norm)
            for k in kernel_sizes)
        self.pool_conv = nn.Conv1d(in_channels, channels, 1, bias=not batch_norm)
        self.out_channels = channels * (len(kernel_sizes) + 1)
        self.post = NormAct(self.out_channels, batch_norm, activation)

    def forward(self, x, mask=None):
        """Apply the module to ``x`` (n, C, L) with real steps ``mask`` (n, L)."""
        z = x if self.bottleneck is None else self.bottleneck(x)
        branches = [conv(z) for conv in self.convs]
        branches.append(self.pool_conv(masked_max_pool_same(x, mask)))
        return self.post(torch.cat(branches, dim=1), mask)


class InceptionBlock(nn.Module):
    """Consecutive inception modules with an optional residual shortcut.

    Parameters
    ----------
    modules : sequence of InceptionModule
        Modules, applied in order.
    in_channels : int
        Channels into the first module.
    residual : bool
        Add a 1x1 convolution (+ batch norm) shortcut from the block's input
        to its output, then apply the activation.
    batch_norm : bool
        Batch normalisation on the shortcut.
    activation : str
        Activation after the sum.
    """

    def __init__(self, modules, in_channels, *, residual, batch_norm,
                 activation):
        super().__init__()
        self.inception = nn.ModuleList(modules)
        out_channels = self.inception[-1].out_channels
        if residual:
            self.shortcut = ConvNormAct(in_channels, out_channels, 1,
                                        batch_norm=batch_norm, activation=None)
            self.post = NormAct(out_channels, False, activation)
        else:
            self.shortcut = self.post = None

    def forward(self, x, mask=None):
        """Apply the block to ``x`` (n, C, L) with real steps ``mask`` (n, L)."""
        out = x
        for module in self.inception:
            out = module(out, mask)
        if self.shortcut is None:
            return out
        return self.post(out + self.shortcut(x, mask), mask)


class InceptionNetwork(MaskedGAPNet):
    """One InceptionTime network (one member of the ensemble).

    See :class:`InceptionTime` for the parameters.
    """

    def __init__(self, *, in_channels, n_outputs, depth, channels, kernel_size,
                 bottleneck, residual, batch_norm, dropout, activation):
        kernel_sizes = as_tuple(kernel_size, "kernel_size")
        if depth < 1:
            raise ValueError(f"depth must be a positive integer; got {depth!r}.")
        blocks = []
        c_in = in_channels
        # A shortcut spans every three modules; a last group of fewer than
        # three modules has none, as in the authors' code.
        for start in range(0, depth, 3):
            size = min(3, depth - start)
            modules = []
            c_block = c_in
            for _ in range(size):
                module = InceptionModule(c_in, channels, kernel_sizes,
                                         bottleneck=bottleneck,
                                         batch_norm=batch_norm,
                                         activation=activation)
                modules.append(module)
                c_in = module.out_channels
            blocks.append(InceptionBlock(modules, c_block,
                                         residual=residual and size == 3,
                                         batch_norm=batch_norm,
                                         activation=activation))
        super().__init__(blocks, c_in, n_outputs, dropout)


@fill_1d_doc
class InceptionTime(Ensemble):
    """InceptionTime: ``n_ensemble`` inception networks, trained independently.

    Parameters
    ----------
    {data_params}
    depth : int, default=6
        Number of inception modules.
    channels : int, default=32
        Filters of each branch of a module (4 branches: 128 channels out).
    kernel_size : sequence of int, default=(39, 19, 9)
        Kernel sizes of the parallel convolutions.
    bottleneck : int, default=32
        Channels of the 1x1 bottleneck before the convolutions (applied when
        a module's input has more than one channel); 0 disables it.
    residual : bool, default=True
        Residual shortcut every three modules.
    batch_norm : bool, default=True
        Batch normalisation in each module and on the shortcuts.
    {head_params}
    n_ensemble : int, default=1
        Number of independently initialised networks, each trained on its
        own loss (see :class:`skcnn.models.Ensemble`); their logits are
        averaged to predict. The paper's ensemble has 5 (and averages
        probabilities).

    {forward_note}
    """

    def __init__(self, *, in_channels, n_outputs, depth=6, channels=32,
                 kernel_size=(39, 19, 9), bottleneck=32, residual=True,
                 batch_norm=True, dropout=0.0, activation="relu", n_ensemble=1):
        if not isinstance(n_ensemble, numbers.Integral) or n_ensemble < 1:
            raise ValueError(
                f"n_ensemble must be a positive integer; got {n_ensemble!r}.")
        super().__init__(
            InceptionNetwork(in_channels=in_channels, n_outputs=n_outputs,
                             depth=depth, channels=channels,
                             kernel_size=kernel_size, bottleneck=bottleneck,
                             residual=residual, batch_norm=batch_norm,
                             dropout=dropout, activation=activation)
            for _ in range(n_ensemble))

    def forward(self, x, mask=None):
        """Logits (n, n_outputs) for ``x`` (n, C, L); see :class:`Ensemble`.

        The arguments are those of :meth:`MaskedGAPNet.forward`.
        """
        return super().forward(x, mask)


@register_model("inceptiontime", ndim=1)
def inceptiontime(*, in_channels, n_outputs, input_size, depth=6, channels=32,
                  kernel_size=(39, 19, 9), bottleneck=32, residual=True,
                  batch_norm=True, dropout=0.0, activation="relu", n_ensemble=1):
    """InceptionTime of Ismail Fawaz et al. (2020); defaults as published.

    ``input_size`` is not used: global average pooling takes any length.
    See :class:`InceptionTime` for the other parameters.
    """
    return InceptionTime(in_channels=in_channels, n_outputs=n_outputs,
                         depth=depth, channels=channels,
                         kernel_size=kernel_size, bottleneck=bottleneck,
                         residual=residual, batch_norm=batch_norm,
                         dropout=dropout, activation=activation,
                         n_ensemble=n_ensemble)
