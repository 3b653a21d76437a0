"""Shared machinery of the four estimators.

``BaseCNN`` stores parameters (``__init__`` does nothing else), validates
input in ``fit``, builds the torch module from the data's shape, trains it
through a skorch net (:class:`skcnn._net._Net`) and predicts in batches.
The task subclasses (:mod:`skcnn.classifier`, :mod:`skcnn.regressor`) only
encode targets and decode outputs.
"""

import inspect
import numbers
import os
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch.callbacks import EarlyStopping, LRScheduler, ProgressBar
from torch.optim import lr_scheduler

from . import models
from ._checkpoint import Checkpoint, fingerprint
from ._compat import Interval, StrOptions, _check_sample_weight
from ._data import (
    ArrayDataset,
    BatchIterator,
    as_tensor,
    batch_rows,
    pad_rows,
    to_canonical,
)
from ._distributed import setup as setup_distributed
from ._finetune import Unfreeze, build_pretrained, configure, layer_groups, load_weights
from ._guards import FiniteLoss, fit_settings, watch_sigint
from ._images import to_unit_range
from ._net import PRECISIONS, ValidAccuracy, _Net
from ._parallel import malloc_thresholds, resolve_num_threads, thread_limit
from ._utils import did_you_mean, resolve_device, seed_from, torch_seed
from .exceptions import FitInterruptedWarning, UnknownBackboneError
from .models._layers import dry_run

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}

# Arguments of the built-in architectures that the estimators expose as
# their own parameters ("knobs"). ``None`` means "the architecture's default".
KNOBS = ("channels", "kernel_size", "pooling", "batch_norm", "dropout",
         "hidden_units", "activation")

# skorch-style routed parameters a user may pass as keyword arguments.
ROUTED_PREFIXES = ("module__", "optimizer__", "criterion__", "callbacks__",
                   "iterator_train__", "iterator_valid__", "compile__")

# Constructor arguments of a user's nn.Module class that the data fixes.
_DATA_ARG_ALIASES = {
    "in_channels": "in_channels", "in_chans": "in_channels",
    "n_outputs": "n_outputs", "num_classes": "n_outputs",
    "n_classes": "n_outputs", "out_features": "n_outputs",
    "input_size": "input_size",
}


class BaseCNN(BaseEstimator):
    """Common base of ``CNNClassifier``, ``CNNRegressor`` and the 1-D ones.

    Not public: see the subclasses for the parameters' documentation.
    """

    _ndim = 2  # spatial dimensions of the inputs: 2 images, 1 signals

    _parameter_constraints = {
        "architecture": [str, type, callable],
        "input_shape": [None, tuple, list],
        "channels": [None, Interval(numbers.Integral, 1, None, closed="left"),
                     tuple, list],
        "kernel_size": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "pooling": [None, StrOptions({"max", "avg"})],
        "batch_norm": [None, "boolean"],
        "dropout": [None, Interval(numbers.Real, 0, 1, closed="left")],
        "hidden_units": [None, Interval(numbers.Integral, 0, None, closed="left"),
                         tuple, list],
        "activation": [None, StrOptions(set(models.ACTIVATIONS))],
        "weights": [None, str, os.PathLike],
        "freeze": [StrOptions({"none", "backbone"}),
                   Interval(numbers.Integral, 0, None, closed="left")],
        "unfreeze_at_epoch": [None, Interval(numbers.Integral, 0, None, closed="left")],
        "lr_decay": [Interval(numbers.Real, 0, 1, closed="right")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left"),
                       StrOptions({"auto"})],
        "lr_schedule": [None, StrOptions({"plateau", "cosine", "onecycle"})],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "precision": [None, StrOptions(set(PRECISIONS))],
        "compile": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "num_threads": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "sync_batch_norm": ["boolean"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "checkpoint_dir": [None, str, os.PathLike],
        "callbacks": [None, list],
    }

    def __init__(
        self,
        architecture="convnet",
        *,
        input_shape=None,
        channels=None,
        kernel_size=None,
        pooling=None,
        batch_norm=None,
        dropout=None,
        hidden_units=None,
        activation=None,
        weights=None,
        freeze="none",
        unfreeze_at_epoch=None,
        lr_decay=1.0,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=64,
        max_epochs=30,
        lr_schedule="onecycle",
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        precision=None,
        compile=False,
        random_state=None,
        device="auto",
        num_threads=None,
        sync_batch_norm=False,
        verbose=0,
        warm_start=False,
        checkpoint_dir=None,
        callbacks=None,
        **kwargs,
    ):
        self.architecture = architecture
        self.input_shape = input_shape
        self.channels = channels
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.hidden_units = hidden_units
        self.activation = activation
        self.weights = weights
        self.freeze = freeze
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.lr_decay = lr_decay
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.precision = precision
        self.compile = compile
        self.random_state = random_state
        self.device = device
        self.num_threads = num_threads
        self.sync_batch_norm = sync_batch_norm
        self.verbose = verbose
        self.warm_start = warm_start
        self.checkpoint_dir = checkpoint_dir
        self.callbacks = callbacks
        vars(self).update(kwargs)  # skorch-style routed parameters, checked in fit

    # -- parameters ---------------------------------------------------------
    def get_params(self, deep=True):
        """Parameters of this estimator, routed ones (``module__*``...) included.

        Parameters
        ----------
        deep : bool, default=True
            Kept for scikit-learn's API; the estimator holds no sub-estimators.

        Returns
        -------
        params : dict
        """
        params = super().get_params(deep=deep)
        params.update(self._routed_params())
        return params

    def set_params(self, **params):
        """Set parameters; ``module__*``, ``optimizer__*``... are routed to skorch.

        The network is rebuilt from the new parameters at the next ``fit``.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
        """
        routed = {k: params.pop(k) for k in list(params)
                  if k.startswith(ROUTED_PREFIXES) or k in self._routed_params()}
        vars(self).update(routed)
        super().set_params(**params)
        return self

    def _routed_params(self):
        """Keyword arguments given beyond the signature (``module__*``...)."""
        named = set(self._get_param_names())
        return {k: v for k, v in vars(self).items()
                if k not in named and not k.startswith("_") and not k.endswith("_")}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    # -- fitted attributes --------------------------------------------------
    @property
    def module_(self):
        """The trained ``torch.nn.Module``."""
        check_is_fitted(self)
        return self.net_.module_

    @property
    def history_(self):
        """Per-epoch training record (``skorch.History``): ``train_loss``,
        ``valid_loss``/``valid_acc`` when validating, ``dur`` (seconds)...

        ``est.history_[:, 'train_loss']`` is the learning curve.
        """
        check_is_fitted(self)
        return self.net_.history

    # -- input validation ---------------------------------------------------
    def _validate_X(self, X, y=None, *, reset):
        """Validate X (and y on fit) and return X as (n, C, *spatial) float32."""
        name = type(self).__name__
        if X is None:
            raise ValueError(f"{name} requires X to be an array-like; got None.")
        dtype = getattr(X, "dtype", None)
        kw = dict(allow_nd=True, dtype=np.float32, order="C")
        raw_ndim = getattr(X, "ndim", None)
        if raw_ndim is None:
            try:
                raw_ndim = np.ndim(X)
            except (TypeError, ValueError):  # ragged lists...: check_array explains
                raw_ndim = 2
        try:
            if reset:
                X, y = validate_data(self, X, y, **self._y_validation_kwargs(), **kw)
            elif raw_ndim == 2:
                X = validate_data(self, X, reset=False, **kw)
            else:
                X = check_array(X, **kw)
        except ValueError as exc:
            if "inhomogeneous" not in str(exc):
                raise
            raise ValueError(
                f"{name} expects X to be an array of samples of one shape; got "
                f"a ragged nested sequence (samples or rows of different "
                f"lengths): {exc}"
            ) from None
        if X.ndim > self._ndim + 2:
            raise ValueError(
                f"{name} expects at most {self._ndim + 2}-D input; got an array "
                f"of shape {X.shape}."
            )
        # An integer X was converted to a new float32 array: scaling it in
        # place leaves the caller's data alone.
        X = to_unit_range(X, dtype)
        if reset:
            _warn_if_channels_last(X, self._ndim, name)
        input_shape = self.input_shape if reset else self.input_shape_
        X = to_canonical(X, self._ndim, input_shape, name)
        sample_shape = tuple(X.shape[1:])
        _check_not_empty(sample_shape, name)
        if reset:
            self.input_shape_ = sample_shape
            self.n_features_in_ = int(np.prod(sample_shape))
        elif sample_shape != self.input_shape_:
            raise ValueError(
                f"X has per-sample shape {sample_shape} (channels, "
                f"{'length' if self._ndim == 1 else 'height, width'}), but {name} "
                f"was fitted on samples of shape {self.input_shape_}."
            )
        return (X, y) if reset else X

    # -- building -----------------------------------------------------------
    def _make_module(self, n_outputs, module_kwargs):
        """Build the network for this data (on the CPU, seeded by the caller).

        Returns the module and its layer groups (input side first, the head
        last) for freezing and per-group learning rates.
        """
        in_channels, *input_size = self.input_shape_
        data_args = {"in_channels": in_channels, "n_outputs": n_outputs,
                     "input_size": tuple(input_size)}
        knobs = {k: getattr(self, k) for k in KNOBS if getattr(self, k) is not None}
        arch = self.architecture
        if isinstance(arch, str) and arch not in models.list_models(self._ndim):
            module, groups = self._make_pretrained(arch, data_args, knobs, module_kwargs)
            self._dry_run(module, hint=(  # backbones are 2-D: images
                f" {arch!r} may need larger images: pass input_size=(height, "
                f"width) to resize them (e.g. the size its weights were trained "
                f"at, often 224)."))
            return module, groups
        if isinstance(arch, str):
            builder = models.get_model_builder(arch, ndim=self._ndim)
            accepted = inspect.signature(builder).parameters
            unused = sorted(set(knobs) - set(accepted))
            if unused:
                usable = sorted(set(KNOBS) & set(accepted))
                raise ValueError(
                    f"architecture={arch!r} does not use {unused}; the knobs it "
                    f"takes are {usable} (set the others to None)."
                )
            module = builder(**{**data_args, **knobs, **module_kwargs})
        elif isinstance(arch, type) and issubclass(arch, torch.nn.Module):
            if knobs:
                raise ValueError(
                    f"The knobs {sorted(knobs)} configure the built-in "
                    f"architectures; pass a custom module's arguments as "
                    f"module__<name> instead."
                )
            accepted = inspect.signature(arch).parameters
            filled = {alias: data_args[key] for alias, key in _DATA_ARG_ALIASES.items()
                      if alias in accepted}
            module = arch(**{**filled, **module_kwargs})
        else:
            raise TypeError(
                f"architecture must be a registered name "
                f"({models.list_models(self._ndim)}), a torchvision/timm backbone "
                f"name, or an nn.Module subclass; got {arch!r}."
            )
        self._dry_run(module)
        if self.weights is not None:
            self._load_weights(module, arch)
        return module, layer_groups(module)

    def _dry_run(self, module, hint=""):
        """One forward pass of zeros shaped like the data, before training.

        Sizes lazy layers, and refuses data the network cannot take (inputs
        smaller than a kernel...) with a ValueError instead of a torch error
        in the first batch.
        """
        try:
            dry_run(module, self.input_shape_)
        except Exception as exc:
            raise ValueError(
                f"The network failed on an input of per-sample shape "
                f"{self.input_shape_}: {str(exc).rstrip('.')}.{hint}"
            ) from exc

    def _load_weights(self, module, arch):
        """Load ``weights`` (a state-dict file) into the built-in or user network."""
        load_weights(module, self.weights, arch)

    def _make_pretrained(self, name, data_args, knobs, module_kwargs):
        models_list = models.list_models(self._ndim)
        if self._ndim != 2:
            models.get_model_builder(name, ndim=self._ndim)  # raises, listing names
        if knobs or module_kwargs:
            raise ValueError(
                f"architecture={name!r} is a pretrained backbone; the knobs and "
                f"module__ arguments {sorted({**knobs, **module_kwargs})} apply to "
                f"the built-in architectures only."
            )
        try:
            return build_pretrained(name, self.weights,
                                    in_channels=data_args["in_channels"],
                                    n_outputs=data_args["n_outputs"])
        except UnknownBackboneError as exc:
            raise UnknownBackboneError(
                f"Unknown image (2-D) architecture {name!r}."
                f"{did_you_mean(name, models_list)} Registered ones: "
                f"{models_list}; or a torchvision/timm backbone name "
                f"('resnet18', 'efficientnet_b0'...). {exc}"
            ) from None

    def _optimizer_and_kwargs(self):
        opt = self.optimizer
        kwargs = {"weight_decay": self.weight_decay}
        if isinstance(opt, str):
            if opt == "sgd":
                kwargs["momentum"] = 0.9
            opt = OPTIMIZERS[opt]
        elif not (isinstance(opt, type) and issubclass(opt, torch.optim.Optimizer)):
            raise TypeError(
                f"optimizer must be one of {sorted(OPTIMIZERS)} or a "
                f"torch.optim.Optimizer subclass; got {opt!r}."
            )
        return opt, kwargs

    def _cycles_momentum(self):
        """Whether the one-cycle schedule cycles the momentum (Adam's beta1).

        Only a momentum the estimator chose: not one the user routed
        (``optimizer__momentum``, ``optimizer__betas``), and not where the
        optimizer runs without momentum (``'rmsprop'``, a plain SGD class).
        """
        routed = self._routed_params()
        if "optimizer__momentum" in routed or "optimizer__betas" in routed:
            return False
        optimizer, kwargs = self._optimizer_and_kwargs()
        params = inspect.signature(optimizer).parameters
        if "betas" in params:
            return True
        if "momentum" in params:
            return bool(kwargs.get("momentum", params["momentum"].default))
        return False

    def _callbacks(self, n_train, has_valid, max_lr, dist_info=None, partial=False):
        # First of ours: a diverged epoch stops fit before the scheduler,
        # early stopping or a checkpoint see its NaN.
        cbs = [("finite_loss", FiniteLoss())]
        if has_valid and self._is_classifier():
            cbs.append(("valid_acc", ValidAccuracy()))
        monitor = "valid_loss" if has_valid else "train_loss"
        schedule = None if partial else self.lr_schedule
        if schedule == "plateau":
            cbs.append(("lr_schedule", LRScheduler(
                lr_scheduler.ReduceLROnPlateau, monitor=monitor, patience=max(1, self.patience // 2),
                factor=0.3)))
        # last_epoch=-1: every fit (warm starts too) runs the whole schedule.
        elif schedule == "cosine":
            cbs.append(("lr_schedule", LRScheduler(
                lr_scheduler.CosineAnnealingLR, T_max=self.max_epochs_,
                last_epoch=-1)))
        elif schedule == "onecycle":
            batch_size, shard = self.batch_size, None
            if dist_info is not None:  # the batches of this rank's shard
                shard = (dist_info.rank, dist_info.world_size)
                batch_size = -(-batch_size // dist_info.world_size)
            steps = len(BatchIterator(range(n_train), batch_size, shard=shard,
                                      drop_singleton=True, balanced=True))
            cbs.append(("lr_schedule", LRScheduler(
                lr_scheduler.OneCycleLR, max_lr=max_lr,
                total_steps=self.max_epochs_ * steps, step_every="batch",
                cycle_momentum=self._cycles_momentum(), last_epoch=-1)))
        if self.early_stopping and not partial:
            cbs.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.patience, load_best=True)))
        if self.unfreeze_at_epoch is not None:
            cbs.append(("unfreeze", Unfreeze(self.unfreeze_at_epoch)))
        if self.verbose:
            cbs.append(("progress_bar", ProgressBar()))
        return cbs + list(self.callbacks or [])

    def _build_net(self, n_outputs, n_train, criterion, criterion_kwargs, generator,
                   device, dist_info=None, partial=False):
        routed = self._routed_params()
        _check_routed(type(self), routed)
        module_kwargs = {k[len("module__"):]: routed.pop(k) for k in list(routed)
                         if k.startswith("module__")}
        module, groups = self._make_module(n_outputs, module_kwargs)
        lr_groups = configure(module, groups, freeze=self.freeze,
                              unfreeze_at_epoch=self.unfreeze_at_epoch, lr=self.lr,
                              lr_decay=self.lr_decay)
        optimizer, optimizer_kwargs = self._optimizer_and_kwargs()
        kwargs = {f"optimizer__{k}": v for k, v in optimizer_kwargs.items()}
        kwargs.update({f"criterion__{k}": v for k, v in criterion_kwargs.items()})
        kwargs.update(routed)  # the user's routed values win
        has_valid = self.early_stopping and not partial
        return _Net(
            module=module,
            criterion=criterion,
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs_,
            batch_size=self.batch_size,
            train_split=(_HoldOut(self.validation_fraction, self._stratify_split(),
                                  self._seed) if has_valid else None),
            callbacks=self._callbacks(
                n_train, has_valid,
                self.lr if lr_groups is None else [lr for _, lr in lr_groups],
                dist_info=dist_info, partial=partial),
            warm_start=False,
            verbose=int(self.verbose),
            device=device,
            precision=self.precision,
            compile=self.compile,
            channels_last=_uses_channels_last(self._ndim, device),
            generator=generator,
            sample_shape=self.input_shape_,
            lr_groups=lr_groups,
            freeze_bn=self.freeze != "none",
            balanced_batches=True,
            group_by_length=self._group_by_length(),
            # The progress bar and the user's callbacks read the running
            # loss; otherwise losses are read back once per epoch.
            record_batch_loss=bool(self.verbose or self.callbacks),
            dist_info=dist_info,
            sync_batch_norm=self.sync_batch_norm,
            **kwargs,
        )

    # -- fit / predict --------------------------------------------------------
    def _prepare(self, X, y=None, *, reset):
        """Validated inputs as ``(X, lengths, y)``.

        ``X`` is a float32 array ``(n, C, *spatial)``; ``lengths`` the real
        length of each series when unequal-length series were padded
        (``None`` otherwise). Subclasses for other input formats override
        this one method.
        """
        if reset:
            X, y = self._validate_X(X, y, reset=True)
        else:
            X = self._validate_X(X, reset=False)
        return X, None, y

    def _sample_weight(self, sample_weight, X, extra=None):
        """Validated per-sample loss weights, or None for none.

        ``sample_weight`` (non-negative, one per sample, not all zero)
        multiplied by ``extra`` (the class weights of each sample's label).
        """
        w = None
        if sample_weight is not None:
            w = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                     ensure_non_negative=True)
        if extra is not None:
            w = extra if w is None else w * extra
        if w is not None and not np.any(w > 0):
            raise ValueError(
                f"{type(self).__name__}: the sample weights (times the class "
                f"weights) are all zero; at least one sample needs a non-zero "
                f"weight."
            )
        return w

    def _drop_zero_weight(self, weight, *arrays):
        """Drop the samples of weight zero; weights normalised to mean 1.

        A sample of weight zero takes no part in training (it would still
        shape the batch-norm statistics of its batch). Equal weights give
        ``None``: training is then exactly that without weights.
        """
        if weight is None:
            return (None, *arrays)
        keep = weight > 0
        if keep.sum() < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples of non-zero "
                f"weight to train; got {int(keep.sum())}."
            )
        if not keep.all():
            arrays = tuple(None if a is None else a[keep] for a in arrays)
            weight = weight[keep]
        if np.all(weight == weight[0]):
            return (None, *arrays)
        return (weight / weight.mean(), *arrays)

    def _fit(self, X, y_tensor, n_outputs, criterion, criterion_kwargs=None,
             lengths=None, weight=None, partial=False):
        """Train on canonical X and encoded targets.

        ``weight``: per-sample loss weights normalised to mean 1, or None.
        ``partial=True`` (``partial_fit``): one pass over the data, the
        network and optimizer of the previous call kept, no learning-rate
        schedule, early stopping, checkpoint or data-parallel training.
        """
        n = len(X)
        if n < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to train; got "
                f"n_samples={n}."
            )
        first = not (partial and hasattr(self, "net_"))
        n_train = n - (int(np.ceil(n * self.validation_fraction))
                       if self.early_stopping and not partial else 0)
        if first:
            self._seed = seed_from(self.random_state)
            self._n_partial_calls = 0
        device = resolve_device(self.device) if first else self.net_.device
        dist_info = None if partial else setup_distributed(device)
        dataset = _make_dataset(
            X, y_tensor, lengths,
            None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        if dist_info is not None and not isinstance(dataset, ArrayDataset):
            raise ValueError(
                f"{type(self).__name__}: data-parallel (DDP) training takes "
                f"in-memory arrays; got images read as they go (file paths, a "
                f"list of images or a Dataset). Load them into an array first."
            )
        criterion_key = (criterion, sorted((criterion_kwargs or {}).items()))
        warm = (not first) or (
            self.warm_start and hasattr(self, "net_")
            and getattr(self, "_n_outputs", None) == n_outputs
            and getattr(self, "_criterion_key", None) == criterion_key
            and self.net_.sample_shape == self.input_shape_)
        checkpoint, state = None, None
        if self.checkpoint_dir is not None and not partial:
            checkpoint = Checkpoint(self.checkpoint_dir,
                                    fingerprint(self, dataset, n_outputs))
            # A warm start continues the network in memory: it does not resume.
            state = None if warm else checkpoint.read()
        if isinstance(dataset, ArrayDataset) and _keeps_data_on(device, dataset):
            dataset = dataset.to(device)
        n_threads = resolve_num_threads(self.num_threads)
        seed = self._seed
        if partial and seed is not None:  # new dropout draws at every call
            seed = (seed + self._n_partial_calls) % (2**63)
        with thread_limit(n_threads), malloc_thresholds(), torch_seed(seed, device):
            if first or not partial:
                generator = torch.Generator()
                if self._seed is not None:
                    generator.manual_seed(self._seed)
                else:
                    generator.seed()
            if warm:
                net = self.net_
                if not partial:
                    net.generator = generator
                    net.restart_rates()
                elif not getattr(self, "_partial_net", False):
                    _for_partial(net)  # partial_fit after fit: one plain pass
                    self._partial_net = True
            else:
                self.max_epochs_ = self._resolve_max_epochs(X, lengths, n_train)
                net = self._build_net(n_outputs, n_train, criterion,
                                      criterion_kwargs or {}, generator, device,
                                      dist_info=dist_info, partial=partial)
            net.dist_info = dist_info
            self._check_network(net.module_ if warm else net.module, lengths)
            net.batch_transform = self._batch_transform()
            if not warm:
                net.initialize()
            if partial:
                epochs = 1
            else:
                epochs = net.max_epochs  # a warm start keeps its net's, as before
            if checkpoint is not None:
                checkpoint.start_epoch = len(net.history)
                if state is not None:
                    # Restored at the start of training (see _Net.notify).
                    checkpoint.pending = state
                    epochs = 0 if state["stopped"] else max(
                        0, net.max_epochs - state["epochs"])
            net.checkpoint = checkpoint
            start = len(net.history)
            with fit_settings(device), watch_sigint() as sigint:
                net.sigint = sigint
                try:
                    net.partial_fit(dataset, None, epochs=epochs)
                finally:
                    net.sigint = None
                    net.checkpoint = None
                    if dist_info is not None:
                        net.release_ddp()
            for row in net.history[start:]:
                row["n_threads"] = n_threads
            net.module_.eval()  # training sets the modes it needs per batch
        if net.stop_ == "interrupt" or sigint["hit"]:
            done = net.epochs_done_ + (state["epochs"] if state is not None else 0)
            resume = (f" Fit again with checkpoint_dir={self.checkpoint_dir!r} to "
                      f"resume after epoch {done}." if checkpoint is not None else "")
            warnings.warn(
                f"{type(self).__name__}.fit was interrupted (KeyboardInterrupt) "
                f"during epoch {done + 1} of {net.max_epochs}, after {done} "
                f"complete epoch(s); the estimator keeps the network as it was "
                f"then.{resume}",
                FitInterruptedWarning, stacklevel=3,
            )
        if not warm:
            self._partial_net = partial
        self.net_ = net
        self._n_outputs = n_outputs
        self._criterion_key = criterion_key
        self.n_threads_ = n_threads
        if partial:
            self._n_partial_calls += 1
        return self

    def _resolve_max_epochs(self, X, lengths, n_train):
        """``max_epochs``, or the number ``max_epochs='auto'`` gives this data."""
        if self.max_epochs != "auto":
            return self.max_epochs
        return self._auto_max_epochs(X, lengths, n_train)

    def _auto_max_epochs(self, X, lengths, n_train):
        raise ValueError(
            f"max_epochs='auto' sizes training for series (Conv1DClassifier, "
            f"Conv1DRegressor); {type(self).__name__} takes an int, got "
            f"max_epochs='auto'."
        )

    def _partial_inputs(self, X, y):
        """Validated ``(X, lengths, y)`` for ``partial_fit``.

        The first call (no fitted network yet) validates as ``fit`` does and
        sets ``input_shape_`` and ``n_features_in_``; later calls check X
        against them, as ``predict`` does, and validate y on its own.
        """
        if not hasattr(self, "net_"):
            return self._prepare(X, y, reset=True)
        X, lengths, _ = self._prepare(X, reset=False)
        if y is None:
            raise ValueError(
                f"{type(self).__name__}.partial_fit requires y to be an "
                f"array-like; got None."
            )
        numeric = self._y_validation_kwargs().get("y_numeric", False)
        y = check_array(y, ensure_2d=False, dtype="numeric" if numeric else None,
                        ensure_all_finite=True, input_name="y")
        if len(y) != len(X):
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: "
                f"X has {len(X)}, y has {len(y)}."
            )
        return X, lengths, y

    def _predict_outputs(self, X):
        """Network outputs for X as a float32 array of shape (n, n_outputs).

        With test-time augmentation, the mean of the views' outputs.
        """
        views = self._predict_view_outputs(X)
        return views[0] if len(views) == 1 else views.mean(axis=0)

    def _predict_view_outputs(self, X):
        """Network outputs per view: float32 array (n_views, n, n_outputs).

        One view (the inputs as they are) unless ``_tta_views`` gives more.
        Every batch goes through the network at the same size
        (:meth:`_predict_batch_size`; the last one padded), so a sample's
        outputs are the same, bit for bit on the CPU, whether it is predicted
        alone, in a subset or with the whole set.
        """
        check_is_fitted(self)
        with thread_limit(resolve_num_threads(self.num_threads)), malloc_thresholds():
            return self._predict_outputs_now(X)

    def _predict_outputs_now(self, X):
        X, lengths, _ = self._prepare(X, reset=False)
        net = self.net_
        module = net.module_
        views = self._tta_views()
        out = np.empty((len(views), len(X), self._n_outputs), dtype=np.float32)
        dataset = _make_dataset(X, None, lengths)
        size = self._predict_batch_size()
        if isinstance(dataset, ArrayDataset):
            iterator = BatchIterator(dataset, size, device=net.device)
        else:  # streamed images: a DataLoader with the same batch sizes
            iterator = dataset.loader(size,
                                      pin_memory=str(net.device).startswith("cuda"))
        # The module stays in eval mode after training (see _fit): concurrent
        # predictions (ParallelPostFit's threads) must not switch it back
        # to training mode under each other's feet.
        if any(m.training for m in module.modules()):
            module.eval()
        start = 0
        with torch.inference_mode():
            for Xb, _ in iterator:
                rows = batch_rows(Xb)
                Xb = pad_rows(Xb, size)
                for v, view in enumerate(views):
                    yb = net.infer(Xb if view is None else view(Xb))[:rows].float()
                    out[v, start:start + rows] = yb.reshape(rows, -1).cpu().numpy()
                start += rows
        return out

    def _tta_views(self):
        """Views of each prediction batch averaged by ``predict`` ([None]: none)."""
        return [None]

    def _predict_batch_size(self):
        """Rows per prediction batch: fixed for a fitted estimator.

        ``max(batch_size, 256)``, lowered for large samples so that a batch
        holds at most 2**22 input values (16 MiB) on the CPU, 2**25 on a
        GPU, and never below 8: a single sample costs one whole batch, and
        224 x 224 RGB images come 16 to a CPU batch rather than 256.
        """
        per_sample = max(1, int(np.prod(self.input_shape_)))
        budget = 2 ** 25 if str(self.net_.device).startswith("cuda") else 2 ** 22
        fit = 1 << max(3, (budget // per_sample).bit_length() - 1)
        return max(8, min(max(self.net_.batch_size, 256), fit))

    def _batch_transform(self):
        """Transform of every training batch (augmentation); None: none."""
        return None

    def _group_by_length(self):
        """Whether training batches group series of similar lengths."""
        return False

    def _check_network(self, module, lengths):
        """Refuse a network that cannot take this data (before training)."""

    def _is_classifier(self):
        return False

    def _stratify_split(self):
        return False

    def _y_validation_kwargs(self):
        return {}


class _HoldOut:
    """skorch ``train_split``: a (stratified) random hold-out of an ArrayDataset.

    Parameters
    ----------
    fraction : float
        Share of the samples held out for validation.
    stratify : bool
        Keep class proportions (classification) where every class has two
        samples or more.
    seed : int or None
        Seed of the split.
    """

    def __init__(self, fraction, stratify, seed):
        self.fraction = fraction
        self.stratify = stratify
        self.seed = seed

    def __call__(self, dataset, y=None, **kwargs):
        n = len(dataset)
        idx = np.arange(n)
        strata = None
        if self.stratify:
            labels = dataset.y.cpu().numpy()
            if dataset.indices is not None:
                labels = labels[dataset.indices.cpu().numpy()]
            counts = np.bincount(labels)
            n_valid = int(np.ceil(n * self.fraction))
            if counts[counts > 0].min() >= 2 and n_valid >= np.count_nonzero(counts):
                strata = labels
        train, valid = train_test_split(idx, test_size=self.fraction,
                                        random_state=self.seed, stratify=strata)
        return dataset.subset(np.sort(train)), dataset.subset(np.sort(valid))


def _make_dataset(X, y_tensor, lengths, weight=None):
    """The torch Dataset of prepared inputs: in memory, or read as it goes.

    ``X`` is a float array from :meth:`BaseCNN._prepare`, or an object with
    ``make_dataset(y, weight)`` (the image estimators' uint8 arrays and
    streamed images, :mod:`skcnn._image_input`). ``weight``: per-sample loss
    weights (a float tensor) or None.
    """
    if hasattr(X, "make_dataset"):
        return X.make_dataset(y_tensor, weight)
    return ArrayDataset(as_tensor(X), y_tensor, _lengths_tensor(lengths), weight=weight)


def _check_not_empty(sample_shape, name):
    if 0 in sample_shape:
        raise ValueError(
            f"{name} expects samples with at least one channel and one value "
            f"along each axis; got samples of shape {sample_shape} (channels, "
            f"{'length' if len(sample_shape) == 2 else 'height, width'})."
        )


def _for_partial(net):
    """Turn a net built by ``fit`` into one for ``partial_fit`` calls.

    No hold-out, no early stopping, no learning-rate schedule (they assume
    the whole training set and a known number of epochs); the weights and
    the optimizer's state are kept, its learning rates (and momentum) set
    back from where the schedule left them to their base values.
    """
    net.train_split = None
    net.callbacks_ = [(name, cb) for name, cb in net.callbacks_
                      if name not in ("lr_schedule", "early_stopping")]
    groups = net.optimizer_.param_groups
    lrs = ([lr for _, lr in net.lr_groups] if net.lr_groups is not None
           else [net.lr] * len(groups))
    defaults = net.optimizer_.defaults
    for group, lr in zip(groups, lrs):
        group["lr"] = lr
        for key in ("betas", "momentum"):
            if key in group and key in defaults:
                group[key] = defaults[key]


def _lengths_tensor(lengths):
    return None if lengths is None else torch.as_tensor(lengths, dtype=torch.long)


def _keeps_data_on(device, dataset, share=0.5):
    """Whether to copy the training data to ``device`` once, before training.

    On a CUDA device, when the data take less than ``share`` of its free
    memory; otherwise (the CPU, or data too large) each batch is moved to
    the device as it is used.
    """
    if not device.startswith("cuda"):
        return False
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    size = sum(t.numel() * t.element_size() for t in (dataset.X, dataset.y)
               if t is not None)
    return size < share * free


def _uses_channels_last(ndim, device):
    """Channels-last memory format: for images (2-D) on a CUDA device."""
    return ndim == 2 and device.startswith("cuda")


def _warn_if_channels_last(X, ndim, name, stacklevel=6):
    """Warn when 4-D images look stored as ``(n, H, W, C)``.

    PIL, scikit-image and matplotlib give ``(H, W, 3)`` images; the networks
    read ``(n, C, H, W)``. The image estimators read such arrays channels-last
    with ``data_format='auto'``; with ``data_format='channels_first'`` it
    trains without error (with H channels of W x C pixels) but learns
    little, so say so at ``fit``.
    """
    colour = (1, 3, 4)
    if ndim == 2 and X.ndim == 4 and X.shape[3] in colour and X.shape[1] not in colour:
        n, h, w, c = X.shape
        warnings.warn(
            f"X has shape {X.shape}, which looks like channels-last images "
            f"(n_samples, height, width, channels); {name} reads 4-D arrays as "
            f"(n_samples, channels, height, width), here {h} channels of {w} x "
            f"{c} pixels. Set data_format='auto' or 'channels_last' (or pass "
            f"X.transpose(0, 3, 1, 2)) to train on {c}-channel {h} x {w} images.",
            UserWarning,
            stacklevel=stacklevel,
        )


def _check_routed(cls, kwargs):
    name = cls.__name__
    params = [p for p in inspect.signature(cls.__init__).parameters
              if p not in ("self", "kwargs")]
    for key in kwargs:
        if not key.startswith(ROUTED_PREFIXES):
            hint = did_you_mean(key, params)
            raise TypeError(
                f"{name} got an unexpected keyword argument {key!r}.{hint} "
                f"Keyword arguments beyond the documented parameters must be "
                f"routed to skorch with one of the prefixes {list(ROUTED_PREFIXES)}."
            )

