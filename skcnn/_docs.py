"""Docstring text shared by the estimators and the models, substituted once.

One mechanism for the whole package: :func:`fill_doc` replaces ``{name}``
placeholders in a docstring with shared pieces of text. Only the names it is
given are replaced, so literal braces (``{'max', 'avg'}``) need no escaping;
pieces may hold placeholders themselves. On a class it also provides
``{default_<parameter>}``, the default of each ``__init__`` parameter, so a
documented default cannot drift from the signature.
"""

import inspect
import re

__all__ = ["CLASSIFIER_LOSS_PARAMS", "CLASSIFIER_RECIPE", "COMMON_ATTRIBUTES",
           "COMMON_PARAMS", "IMAGE", "REGRESSOR_LOSS_PARAMS", "REGRESSOR_RECIPE",
           "SIGNAL", "fill_doc"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")

COMMON_PARAMS = """\
architecture : str or nn.Module subclass, default={default_architecture}
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
    pooling : {'max', 'avg'}, default=None
        Pooling between blocks (``None``: the architecture's default).
    batch_norm : bool, default=None
        Batch normalisation after each convolution.
    dropout : float in [0, 1), default=None
        Dropout probability in the dense head.
    hidden_units : int or sequence of int, default=None
        Hidden layers of the dense head; ``()`` for a single linear layer.
    activation : {'relu', 'leaky_relu', 'elu', 'gelu', 'silu', 'swish', \
'tanh', 'sigmoid'}, default=None
        Activation function of the built-in architectures (``'swish'`` is
        ``'silu'``, under Keras's name).
    weights : str, path or None, default=None
        Initial weights. With a torchvision/timm backbone name as
        ``architecture`` (``'resnet18'``, ``'efficientnet_b0'``,
        ``'convnext_tiny'``, ``'efficientnet_lite0'``...): ``'DEFAULT'`` or a
        weights name such as ``'IMAGENET1K_V1'`` (read from torchvision's
        cache ``$TORCH_HOME/hub/checkpoints``, downloaded there on a machine
        with internet), a state-dict file, or ``None`` (random). The
        backbone's head is replaced by one sized from ``y``; grey or
        multi-channel images get a first convolution built from the
        pretrained RGB filters (summed for one channel; kept for the first
        three and repeated for more, as timm's ``adapt_input_conv``); the
        mean/std of the weights' metadata become the network's first layer,
        so images are passed in [0, 1]. Images of one size are taken at
        that size; images of different sizes get the weights' resize and
        centre crop (see ``input_size``). With a built-in architecture or
        your own class: the path of a state dict of the same network, such
        as a fitted estimator's ``module_.state_dict()`` (with
        ``normalize='zscore+scale'``, its scale perceptron loads too).
    freeze : {'none', 'backbone'} or int, default='none'
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
    {signal_params}{image_params}optimizer : {'adam', 'adamw', 'sgd', 'rmsprop'} or Optimizer subclass, \
default='adam'
        ``'sgd'`` uses momentum 0.9. Other optimizer arguments go through
        ``optimizer__<name>=value``. The ``'onecycle'`` schedule cycles the
        momentum (Adam's first beta) between 0.95 and 0.85 unless
        ``optimizer__momentum`` or ``optimizer__betas`` is given.
    lr : float, default={default_lr}
        Learning rate (the peak rate of the ``'onecycle'`` schedule).
    weight_decay : float, default=0.0
        L2 penalty (decoupled for ``'adamw'``).
    batch_size : int, default={default_batch_size}
        Largest number of samples per gradient step (and per prediction
        batch, at least 256). An epoch of ``n`` samples is split into
        ``ceil(n / batch_size)`` batches of nearly equal size: 36 samples in
        batches of 16 train as 12, 12, 12, not 16, 16, 4, since a small last
        batch gives batch norm noisy statistics.
    max_epochs : int{auto_epochs_type}, default={default_max_epochs}
        Passes over the training data.{auto_epochs_doc}
    lr_schedule : {'onecycle', 'cosine', 'plateau'} or None, default='onecycle'
        Learning-rate schedule: one-cycle (warm-up from ``lr / 25`` to
        ``lr`` over 30% of the steps, then annealing, stepped every batch),
        cosine annealing over ``max_epochs``, ``ReduceLROnPlateau`` (x0.3
        after more than ``patience // 2`` epochs without improvement of the
        validation, else training, loss), or a constant rate.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified
        for classifiers), stop when the validation loss has not improved for
        ``patience`` epochs, and restore the best weights. With ``False`` no
        data are held out.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out when ``early_stopping=True``.
    patience : int, default=5
        Epochs without improvement before early stopping.
    precision : {'bf16', 'fp16'} or None, default=None
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
        device string (``'cpu'``, ``'cuda:1'``...). With several GPUs,
        ``'auto'`` in a worker of a search (Dask, Ray, joblib) or a
        ``torchrun`` process picks ``cuda:<worker index % GPU count>``, so
        concurrent fits spread over the GPUs.
    num_threads : int or None, default=None
        torch threads (intra-op) used during ``fit``, ``partial_fit`` and
        ``predict``; torch's setting is restored afterwards. ``None``: the
        threads the worker running the fit was given (a Dask worker's
        ``nthreads``, a Ray task's ``num_cpus``, joblib's per-worker limit
        of ``cpu_count() // n_jobs``), so that a search of ``k`` workers on
        ``k`` cores does not oversubscribe them; outside a worker, torch's
        current setting. The count used is ``n_threads_``.
    sync_batch_norm : bool, default=False
        In data-parallel training (a ``torchrun`` launch, see the user
        guide's "Scaling out"), normalise with batch statistics over every
        process instead of each process's share of the batch; on the CPU
        as on CUDA, in every batch-norm layer (the 1-D networks' masked
        batch norm over the real time steps of every process's series).
        No effect in a single process.
    verbose : int, default=0
        0 is silent; 1 prints a per-epoch log and shows a progress bar.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` (when the
        data's shapes and outputs are unchanged) instead of starting anew.
    checkpoint_dir : str, path or None, default=None
        Directory where ``fit`` saves a checkpoint after every epoch (the
        network, optimiser, learning-rate schedule, early stopping's state,
        random states and history; written atomically). ``fit`` with a
        checkpoint there resumes from it: a fit killed after epoch ``k`` and
        run again with the same parameters, data and ``random_state`` ends
        as the uninterrupted fit would have (on the CPU, with the same
        weights). A checkpoint of another fit (other parameters or data) is
        refused with a ``ValueError``; a finished one returns the trained
        network without training. Use one directory per fit (not one
        shared by a grid search). See the user guide, "Persistence".
    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Extra skorch callbacks (checkpoints, loggers...).
    **kwargs : dict
        skorch routing for power users: ``module__*`` (architecture
        arguments), ``optimizer__*``, ``criterion__*``, ``callbacks__*``,
        ``iterator_train__*``, ``iterator_valid__*``, ``compile__*``."""

CLASSIFIER_LOSS_PARAMS = """\
loss : {'cross_entropy', 'focal'} or torch loss class, default='cross_entropy'
        Training loss, computed per sample and averaged over a batch with
        the samples' weights (``sample_weight`` times ``class_weight``).
        ``'cross_entropy'``: softmax cross-entropy (binary cross-entropy of
        each label for multi-label targets). ``'focal'``: the focal loss
        ``-(1 - p_t)^gamma log(p_t)`` of Lin et al. (2017) with
        ``gamma=2``, which down-weights well-classified samples (class
        imbalance, hard examples); change gamma with ``criterion__gamma``.
        A ``torch.nn.Module`` subclass is built with ``reduction='none'``
        when it takes that argument, and called on the logits and the
        encoded labels (class indices, or a float indicator matrix).
    label_smoothing : float in [0, 1), default=0.0
        Label smoothing of the built-in losses: the targets become
        ``(1 - eps) * onehot + eps / n_classes`` (per label ``(1 - eps) y +
        eps / 2`` for multi-label targets), which keeps the network from
        becoming over-confident."""

REGRESSOR_LOSS_PARAMS = """\
loss : {'mse', 'mae', 'huber'} or torch loss class, default='mse'
        Training loss on the standardised targets, computed per sample and
        averaged over a batch with the samples' weights: mean squared
        error, mean absolute error (robust to outliers; fits a median),
        or the Huber loss with ``delta=1`` (one standard deviation of the
        target: squared below, absolute above). A ``torch.nn.Module``
        subclass is built with ``reduction='none'`` when it takes that
        argument."""

COMMON_ATTRIBUTES = """\
net_ : skorch.NeuralNet
        The fitted skorch net that trained the module.
    module_ : torch.nn.Module
        The trained network.
    history_ : skorch.History
        Per-epoch record: ``train_loss``, ``valid_loss`` and (classifiers)
        ``valid_acc`` when validating, ``dur`` (seconds). The learning curve
        is ``history_[:, 'train_loss']``. ``n_threads`` records the torch
        threads of each epoch.
    n_threads_ : int
        torch threads used by the last ``fit``/``partial_fit`` (see
        ``num_threads``).
    normalize_ : {'zscore', 'zscore+scale', 'minmax'} or None
        (1-D estimators) The per-series scaling applied in ``fit`` and
        ``predict``: ``normalize``, or what ``'auto'`` chose.
    max_epochs_ : int
        Epochs the last new network was trained for at most: ``max_epochs``,
        or the number ``max_epochs='auto'`` chose for the data.
    input_shape_ : tuple of int
        Shape ``(channels, {spatial})`` of one sample as the network sees it.
    n_features_in_ : int
        Values per sample (the product of ``input_shape_``).
    feature_names_in_ : ndarray of shape (``n_features_in_``,)
        Column names, when X was a DataFrame with string column names.{image_attributes}"""

SIGNAL_PARAMS = """\
normalize : {'auto', 'zscore', 'zscore+scale', 'minmax'} or None, default='auto'
        Scale every series and channel over its own real length, in ``fit``
        and ``predict`` alike (nothing is learned from the training set):
        ``'zscore'`` subtracts its mean and divides by its standard
        deviation, as the deep-learning papers on the UCR archive do;
        ``'minmax'`` maps it to [0, 1]; ``None`` leaves the values as they
        are (the UCR data are already z-normalised). A constant series
        becomes zeros. Scaling each series discards its level and amplitude,
        which often carry the class (multichannel features); but a network
        cannot learn across scales of many orders of magnitude either (raw
        electrical currents). ``'zscore+scale'`` z-normalises inside the
        network and gives it back what z-normalising removed: each series'
        and channel's mean, standard deviation and largest absolute value,
        on a log scale, go through batch norm to a perceptron (one hidden
        layer of 32 units) whose output is added to the network's.
        {auto_normalize_doc}
        ``normalize_`` records the choice; the user guide gives the
        measurements.
    augment : str, list of str, dict or None, default=None
        Augment every training batch (never validation or prediction
        batches), drawn anew each epoch and reproducible with
        ``random_state``. Names: ``'window_slice'`` (crop a random window
        of 90% of the series and stretch it back), ``'scaling'`` (multiply
        each series and channel by a factor ~ N(1, 0.1^2)) and ``'jitter'``
        (add Gaussian noise of 0.03 times the series' standard deviation).
        A dict ``{'window_slice': 0.8, 'jitter': 0.05}`` sets the
        strengths (the share kept, the standard deviations); a list uses
        the defaults. Applied in the order window_slice, scaling, jitter,
        to the real time steps only.
    n_ensemble : int, default=1
        Train this many networks of ``architecture`` side by side, each
        from its own initial weights and on its own loss, and predict with
        their mean logits (InceptionTime's ensemble of five, for any
        architecture). Costs ``n_ensemble`` times the time and memory of
        one network.
    group_by_length : bool, default=False
        With series of unequal lengths, train on batches of series of
        similar lengths: each epoch's shuffled series are sorted by length
        within pools of 50 batches, cut into batches and the batches
        shuffled (Hugging Face's ``group_by_length``). A batch is trimmed
        to its longest series, so this cuts the padding computed on, and
        ``max_epochs='auto'`` counts the time steps actually computed. With
        few series the same series then meet in every epoch's batches, which
        can hurt a network with batch norm; see the user guide. No effect
        on series of equal lengths.
    """

SIGNAL_NOTES = """\
    Series formats: numpy ``(n, L)`` and ``(n, C, L)`` arrays (sktime's and
    aeon's ``numpy3D``), wide DataFrames (one row a series; column names
    are kept in ``feature_names_in_``), nested DataFrames (sktime's
    ``nested_univ``: a cell a ``pd.Series``, a column a channel), long
    DataFrames (aeon's and sktime's ``pd-multiindex``: index (series,
    time), a column a channel; the series in the order they first
    appear), and lists of 1-D ``(L_i,)`` or 2-D ``(C, L_i)`` arrays
    (aeon's ``np-list``).
    Series of unequal length are zero-padded on the right and masked:
    ``'fcn'``, ``'resnet'`` and ``'inceptiontime'`` give a series the same
    output however long the series it is batched with, and take series of
    any length at predict time (as a 3-D array or a list; a 2-D array must
    have the width seen in ``fit``, as in scikit-learn). ``'convnet'`` (a dense head of fixed size)
    needs every series to have the length seen in ``fit``. The channels
    must always match ``fit``.

    Training recipe: the papers train FCN and ResNet for 1500-2000 epochs
    of Adam at a constant 1e-3 (halved on plateaus). The 1-D defaults
    instead {recipe}
"""

AUTO_EPOCHS_DOC = """ ``'auto'`` sizes training to the data: enough
        epochs for about {auto_steps} optimizer steps, but no more than the
        epochs that process 25 million time steps (series x length) in all,
        and at least 20. Small sets get their steps; long or numerous series
        stop before the time grows with them. The number chosen is
        ``max_epochs_``. See Notes."""

# Where the 1-D defaults come from, for the Notes of each 1-D estimator.
CLASSIFIER_RECIPE = """\
use FCN (Wang et al. 2017), batches of at most {default_batch_size} (the
    papers use at most 16, and ``n / 10`` for small sets) and a one-cycle
    schedule peaking at {default_lr}, on batches of nearly equal size, for
    ``max_epochs='auto'`` epochs: about 4000 optimizer steps, capped at 25
    million time steps processed (series x length, summed over epochs)
    and at least 20 epochs. 50 series of length 150 get 572 epochs; 100
    series of length 1460 get 171; 10,000 series get 20. These defaults
    were chosen on every UCR/UEA set shipped in the sktime and aeon wheels
    (``benchmarks/ucr.py``); the user guide gives the figures, the sets
    where they fall short, and the alternatives that were tried.
    Augmentation is off by default. The image estimators' defaults
    (batches of 64, 30 epochs) suit data sets of thousands of images
    instead."""

REGRESSOR_RECIPE = """\
use the ``'convnet'`` pyramid, batches of at most {default_batch_size} and a
    one-cycle schedule peaking at {default_lr}, on batches of nearly equal
    size, for ``max_epochs='auto'`` epochs (the classifier's rule with
    half its steps: about 2000 steps, at most 25 million time steps, at
    least 20 epochs; 4000 steps overfitted Covid3Month). Its
    dense head keeps where in a series a feature occurs, which targets tied
    to positions (the wavelengths of a spectrum) need: on Tecator it beat a
    ridge regression where the global-pooling FCN did not. It needs series
    of the length seen in ``fit``; for unequal lengths pass
    ``architecture='fcn'``. On small regression sets compare with
    predicting the mean and with a ridge regression (``benchmarks/ucr.py``
    runs both; the user guide gives the figures). The image estimators'
    defaults (batches of 64, 30 epochs) suit data sets of thousands of
    images instead."""

IMAGE_PARAMS = """\
data_format : {'auto', 'channels_last', 'channels_first'}, default='auto'
        Where the channel axis of image arrays is. ``'auto'``: ``(n, C, H,
        W)`` (PyTorch's layout) unless the last axis has 1, 3 or 4 entries
        and axis 1 does not, as in ``(n, H, W, 3)`` arrays from PIL,
        scikit-image or matplotlib; ``(n, H, W)`` arrays are grey images.
        Used for arrays, lists of arrays and the items of a ``Dataset``.
    input_size : int, (int, int) or None, default=None
        Size ``(height, width)`` the network sees. Each image's shorter side
        is resized (for a pretrained backbone, in the proportion its weights
        use, e.g. 73 for a 64 crop of a 224-from-256 recipe) and the centre
        cropped to it, in ``fit`` and ``predict``. ``None``: images of one
        size are taken as they are; images of different sizes get a
        pretrained backbone's own preprocessing (its weights' size,
        interpolation and crop, timm's ``crop_pct``/``crop_mode`` included)
        and raise an error asking for ``input_size`` with a built-in
        architecture.
    augment : {'flip', 'crop', 'standard', 'trivialaugment'}, transform or None, \
default=None
        Augment every training image (never validation or prediction
        images), drawn anew for each image and epoch and reproducible with
        ``random_state``: ``'flip'`` (horizontal flip), ``'crop'`` (random
        resized crop of 25% to 100% of the area, back to the image size),
        ``'standard'`` (crop then flip), ``'trivialaugment'`` (crop, flip and
        torchvision's ``TrivialAugmentWide``), or any
        ``torchvision.transforms.v2`` transform or ``Compose`` (or callable)
        that takes one float image ``(C, H, W)`` in [0, 1] and returns one
        of the same shape. No flips for digits, text or anything whose
        mirror image means something else.
    tta : {'flip'} or None, default=None
        Test-time augmentation: ``'flip'`` averages the predictions
        (probabilities for classifiers) on each image and on its mirror
        image.
    num_workers : int, default=0
        Background processes that read and decode images (file paths, lists
        of images, a ``Dataset``, resized arrays) while the network trains:
        a few batches are in memory at a time, whatever the number of
        images. 0 reads them in the training process.
    """

IMAGE_ATTRIBUTES = """
    preprocessing_ : dict
        How images are brought to the network's input, reused by
        ``predict``: ``'input_size'`` (``(h, w)``, or ``None`` for images
        taken at their own size), ``'resize'`` (shorter side before the
        centre crop), ``'interpolation'``, ``'crop_mode'`` and
        ``'channels'``. A pretrained backbone's mean/std normalisation is
        the network's first layer (``module_.normalize``)."""

IMAGE = dict(
    auto_epochs_type="",
    auto_epochs_doc="",
    ndim=2,
    intro=(
        "Accepts ``(n, C, H, W)``, ``(n, H, W, C)`` and grey ``(n, H, W)`` "
        "arrays (float in [0, 1], or uint8 / uint16 scaled by 255 / 65535 per "
        "batch, without a float copy of the whole set), flat ``(n, d)`` arrays "
        "read through ``input_shape``, lists of images of any sizes (arrays or "
        "PIL images), lists or 1-D arrays of image file paths and "
        "``torch.utils.data.Dataset`` objects of images (or of ``(image, target)`` "
        "pairs, whose ``targets`` attribute serves as ``y`` when ``y`` is None); "
        "the last three are read in batches by ``num_workers`` background "
        "processes (see the user guide's *Images* page)."
    ),
    signal_params="",
    image_params=IMAGE_PARAMS,
    image_attributes=IMAGE_ATTRIBUTES,
    signal_notes="",
    shape_doc="(channels, height, width) or (height, width)",
    flat_doc=("a one-channel square image when ``n_features`` is a perfect "
              "square (64 values -> 8x8), else a ``1 x n_features`` strip."),
    spatial="height, width",
)
# normalize='auto', by task (SIGNAL_PARAMS' {auto_normalize_doc}).
AUTO_NORMALIZE_CLASSIFIER = """``'auto'`` chooses ``'zscore+scale'`` when,
        in some channel, the 90th percentile of the training series'
        standard deviations exceeds the 10th by more than 1000 times, else
        ``None``."""
AUTO_NORMALIZE_REGRESSOR = """``'auto'`` chooses ``'zscore+scale'``: a
        target often follows the series' level or amplitude as much as
        their shape."""

SIGNAL = dict(
    auto_normalize_doc=AUTO_NORMALIZE_CLASSIFIER,
    auto_epochs_type=" or 'auto'",
    auto_epochs_doc=AUTO_EPOCHS_DOC.format(auto_steps=4000),
    ndim=1,
    intro=("Accepts ``(n, L)`` univariate and ``(n, C, L)`` multichannel "
           "arrays, wide and nested (sktime) DataFrames and lists of series "
           "of unequal length (see Notes)."),
    signal_params=SIGNAL_PARAMS,
    image_params="",
    image_attributes="",
    signal_notes="\n\n" + SIGNAL_NOTES.rstrip("\n"),
    shape_doc="(channels, length) or (length,)",
    flat_doc="each row is a one-channel series.",
    spatial="length",
)



def fill_doc(**pieces):
    """Decorator: substitute ``{name}`` placeholders of a docstring.

    Parameters
    ----------
    **pieces : str
        Text for each placeholder name. Placeholders of other names and
        other braces are left as they are. Substitution repeats until no
        given name is left, so pieces may contain placeholders.

    Returns
    -------
    decorate : callable
        Takes a class or function and returns it with its docstring filled
        in. For a class, ``{default_<name>}`` is the ``repr`` of the default
        of each ``__init__`` parameter (unless given in ``pieces``).
    """
    def decorate(obj):
        if not obj.__doc__:  # None under python -OO
            return obj
        values = {}
        if inspect.isclass(obj):
            for name, param in inspect.signature(obj.__init__).parameters.items():
                if param.default is not inspect.Parameter.empty:
                    values[f"default_{name}"] = repr(param.default)
        values.update(pieces)
        doc = obj.__doc__
        for _ in range(10):
            new = _PLACEHOLDER.sub(
                lambda m: str(values[m.group(1)]) if m.group(1) in values
                else m.group(0), doc)
            if new == doc:
                break
            doc = new
        obj.__doc__ = doc
        return obj

    return decorate
