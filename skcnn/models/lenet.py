"""LeNet-5 (LeCun et al., 1998), with 'same' padding so small inputs work."""

from ._layers import check_input_size, fill_data_params
from ._registry import register_model
from .convnet import ConvNet


@fill_data_params
class LeNet5(ConvNet):
    """LeNet-5: conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, output.

    The classic layout is the :class:`~skcnn.models.convnet.ConvNet` pyramid
    with one convolution per block and LeNet's sizes, so this class only sets
    those defaults. Convolutions use 'same' padding (the original's first
    convolution shrank 32x32 to 28x28), and pooling rounds up, so 8x8 digits
    and ``1 x d`` strips of tabular features both work. The original used
    average pooling (subsampling) and tanh/sigmoid; ReLU trains faster and is
    the default here, ``activation='tanh'`` gives the original's flavour.
    The partial C3 connection table and the RBF output layer are not
    reproduced: the output is plain logits.

    Parameters
    ----------
    {data_params}
    channels : sequence of int, default=(6, 16)
        Filters of each convolution (one 2x2 pooling after each).
    kernel_size : int, default=5
        Size of every convolution kernel.
    pooling : {'avg', 'max'}, default='avg'
        Pooling after each convolution ('avg' as the original's subsampling).
    batch_norm : bool, default=False
        Batch normalisation after every convolution (not in the original).
    dropout : float, default=0.0
        Dropout before each dense layer.
    hidden_units : sequence of int, default=(120, 84)
        Hidden layers of the dense head.
    activation : str, default='relu'
        Activation function (see ``skcnn.models.ACTIVATIONS``).
    """

    def __init__(self, *, in_channels, n_outputs, input_size, channels=(6, 16),
                 kernel_size=5, pooling="avg", batch_norm=False, dropout=0.0,
                 hidden_units=(120, 84), activation="relu"):
        super().__init__(2, in_channels=in_channels, n_outputs=n_outputs,
                         input_size=check_input_size(input_size, 2),
                         channels=channels, kernel_size=kernel_size,
                         pooling=pooling, batch_norm=batch_norm, dropout=dropout,
                         hidden_units=hidden_units, activation=activation,
                         convs_per_block=1)


@register_model("lenet5", ndim=2)
def lenet5(*, in_channels, n_outputs, input_size, channels=(6, 16), kernel_size=5,
           pooling="avg", batch_norm=False, dropout=0.0, hidden_units=(120, 84),
           activation="relu"):
    """LeNet-5 for small grey or colour images.

    Knobs: ``channels`` (filters of the two convolutions), ``kernel_size``,
    ``pooling``, ``batch_norm``, ``dropout`` and ``hidden_units`` (the 120-84
    dense head) and ``activation``. See :class:`LeNet5`.
    """
    return LeNet5(in_channels=in_channels, n_outputs=n_outputs,
                  input_size=input_size, channels=channels,
                  kernel_size=kernel_size, pooling=pooling, batch_norm=batch_norm,
                  dropout=dropout, hidden_units=hidden_units,
                  activation=activation)
