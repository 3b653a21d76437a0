"""Parameter documentation shared by the estimators, substituted once."""

COMMON_PARAMS = """\
architecture : str or nn.Module subclass, default='convnet'
        Network to train. A name from :func:`skcnn.models.list_models`
        (``ndim={ndim}``), or your own ``torch.nn.Module`` subclass: its
        constructor arguments come from ``module__<name>=value``, and
        arguments named ``in_channels``/``in_chans``, ``n_outputs``/
        ``num_classes``/``n_classes``/``out_features`` and ``input_size``
        are filled in from the data. Lazy layers (``nn.LazyLinear``) are
        sized by a dry forward pass; you never compute a flatten size.
    input_shape : tuple of int, default=None
        How a flat ``(n_samples, n_features)`` array is read: ``{shape_doc}``.
        ``None``: {flat_doc}
    channels : int or sequence of int, default=None
        Filters of each convolutional block/stage. ``None`` keeps the
        architecture's default (``(32, 64)`` for ``'convnet'``).
    kernel_size : int, default=None
        Convolution kernel size (``None``: the architecture's default).
    pooling : {{'max', 'avg'}}, default=None
        Pooling between blocks (``None``: the architecture's default).
    batch_norm : bool, default=None
        Batch normalisation after each convolution.
    dropout : float in [0, 1), default=None
        Dropout probability in the dense head.
    hidden_units : int or sequence of int, default=None
        Hidden layers of the dense head; ``()`` for a single linear layer.
    activation : {{'relu', 'leaky_relu', 'elu', 'gelu', 'silu', 'tanh', \
'sigmoid'}}, default=None
        Activation function of the built-in architectures.
    weights : str, path or None, default=None
        Initial weights. With a torchvision/timm backbone name as
        ``architecture`` (``'resnet18'``, ``'efficientnet_b0'``,
        ``'convnext_tiny'``, ``'efficientnet_lite0'``...): ``'DEFAULT'`` or a
        weights name such as ``'IMAGENET1K_V1'`` (read from torchvision's
        cache ``$TORCH_HOME/hub/checkpoints``, downloaded there on a machine
        with internet), a state-dict file, or ``None`` (random). The
        backbone's head is replaced by one sized from ``y``; grey or
        multi-channel images get a first convolution built from the
        pretrained RGB filters (summed for one channel); the mean/std of the
        weights' metadata become the network's first layer, so images are
        passed in [0, 1] at their own size. With a built-in architecture or
        your own class: the path of a state dict of the same network.
    freeze : {{'none', 'backbone'}} or int, default='none'
        Which layer groups train (groups run from the stem to the head, e.g.
        ResNet ``stem, layer1..layer4, fc``): ``'backbone'`` trains the new
        head only (feature extraction), an int ``k`` the last ``k`` groups
        and the head, ``'none'`` everything (full fine-tuning). Batch-norm
        layers of frozen groups stay in eval mode: their running statistics
        keep their pretrained values.
    unfreeze_at_epoch : int or None, default=None
        The two-phase recipe: train with ``freeze`` until this epoch
        (0-based), then unfreeze every layer.
    lr_decay : float in (0, 1], default=1.0
        Layer-wise learning-rate decay: the head trains at ``lr`` and each
        earlier group at ``lr_decay`` times the rate of the next one (0.3
        gives about 3x smaller rates per group, as fine-tuning recipes
        suggest). ``1.0``: one rate for all.
    optimizer : {{'adam', 'adamw', 'sgd', 'rmsprop'}} or Optimizer subclass, \
default='adam'
        ``'sgd'`` uses momentum 0.9. Other optimizer arguments go through
        ``optimizer__<name>=value``.
    lr : float, default=1e-3
        Learning rate (the peak rate of the ``'onecycle'`` schedule).
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``'adamw'``).
    batch_size : int, default=64
        Largest number of samples per gradient step (and per prediction
        batch, at least 256). An epoch of ``n`` samples is split into
        ``ceil(n / batch_size)`` batches of nearly equal size: 36 samples in
        batches of 16 train as 12, 12, 12, not 16, 16, 4, since a small last
        batch gives batch norm noisy statistics (on UCR's ArrowHead, FCN's
        test accuracy rose from 0.817 to 0.836).
    max_epochs : int, default=30
        Passes over the training data.
    lr_schedule : {{'onecycle', 'cosine', 'plateau'}} or None, default='onecycle'
        Learning-rate schedule: one-cycle (warm-up then annealing, stepped
        every batch), cosine annealing over ``max_epochs``,
        ``ReduceLROnPlateau`` on the validation (else training) loss, or a
        constant rate.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified
        for classifiers), stop when the validation loss has not improved for
        ``patience`` epochs, and restore the best weights. With ``False`` no
        data are held out.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out when ``early_stopping=True``.
    patience : int, default=5
        Epochs without improvement before early stopping.
    precision : {{'bf16', 'fp16'}} or None, default=None
        Mixed-precision training and inference with ``torch.autocast``
        (``'fp16'`` adds gradient scaling). ``None`` computes in float32.
    compile : bool, default=False
        Compile the network with :func:`torch.compile` before training.
        The first batches take longer (tracing and code generation; on the
        CPU a C++ compiler is needed); later steps run fused kernels, worth
        it for long fits on a GPU. Options of ``torch.compile`` go through
        ``compile__<name>=value`` (``compile__mode='max-autotune'``). A
        pickled estimator is loaded uncompiled, and predicts the same.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights' initialisation, dropout, shuffling and the
        validation split. The same seed on the CPU gives identical
        predictions. Your own torch random state is left untouched.
    device : str, default='auto'
        ``'auto'`` uses CUDA when available, else the CPU; or any torch
        device string (``'cpu'``, ``'cuda:1'``...).
    verbose : int, default=0
        0 is silent; 1 prints a per-epoch log and shows a progress bar.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` (when the
        data's shapes and outputs are unchanged) instead of starting anew.
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks (checkpoints, loggers...).
    **kwargs : dict
        skorch routing for power users: ``module__*`` (architecture
        arguments), ``optimizer__*``, ``criterion__*``, ``callbacks__*``,
        ``iterator_train__*``, ``iterator_valid__*``, ``compile__*``."""

COMMON_ATTRIBUTES = """\
net_ : skorch.NeuralNet
        The fitted skorch net that trained the module.
    module_ : torch.nn.Module
        The trained network.
    history_ : skorch.History
        Per-epoch record: ``train_loss``, ``valid_loss`` and (classifiers)
        ``valid_acc`` when validating, ``dur`` (seconds). The learning curve
        is ``history_[:, 'train_loss']``.
    input_shape_ : tuple of int
        Shape ``(channels, {spatial})`` of one sample as the network sees it.
    n_features_in_ : int
        Values per sample (the product of ``input_shape_``).
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Column names, when X was a DataFrame with string column names."""

IMAGE = dict(
    ndim=2,
    shape_doc="(channels, height, width) or (height, width)",
    flat_doc=("a one-channel square image when ``n_features`` is a perfect "
              "square (64 values -> 8x8), else a ``1 x n_features`` strip."),
    spatial="height, width",
)
SIGNAL = dict(
    ndim=1,
    shape_doc="(channels, length) or (length,)",
    flat_doc="each row is a one-channel series.",
    spatial="length",
)


def fill(template, kind):
    """Substitute the shared parameter and attribute text into a docstring."""
    return template.format(
        params=COMMON_PARAMS.format(**kind),
        attributes=COMMON_ATTRIBUTES.format(**kind),
    )
