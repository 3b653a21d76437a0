"""The skorch net the estimators drive: skorch's machinery, a fast data path.

``_Net`` is a :class:`skorch.NeuralNet` that keeps everything skorch offers
(callbacks, ``module__*``/``optimizer__*`` routing, checkpoints, the history)
and changes only what costs time:

- an :class:`~skcnn._data.ArrayDataset` is batched by
  :class:`~skcnn._data.BatchIterator` (tensor slices) instead of a
  ``DataLoader`` over per-sample fetches;
- batch losses are read back from the device once per epoch, not once per
  batch (no per-batch synchronisation on a GPU), unless a callback reads
  them as they come (the progress bar of ``verbose=1``, the user's own
  callbacks): see ``record_batch_loss``;
- optional mixed precision (``torch.autocast``, with a gradient scaler for
  float16), ``channels_last`` memory format on CUDA, and ``torch.compile``
  of the network in place (see :meth:`_Net.torch_compile`).
"""

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ._data import ArrayDataset, BatchIterator, batch_rows
from ._finetune import set_frozen_bn_eval
from ._losses import weighted_mean
from .models._ensemble import Ensemble

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


class _Net(NeuralNet):
    """skorch ``NeuralNet`` with a tensor-slice data path and mixed precision.

    Parameters (beyond skorch's)
    ----------------------------
    precision : {None, 'bf16', 'fp16'}, default=None
        Autocast dtype for the forward pass; ``None`` trains in float32.
    channels_last : bool, default=False
        Store the module and 4-D inputs in channels-last memory format.
    generator : torch.Generator, default=None
        Source of the per-epoch shuffling of in-memory data.
    sample_shape : tuple of int, default=None
        Shape of one input sample the module was built for (the estimator
        checks it before a warm start; lazy layers are sized by the
        estimator's dry run before the module reaches skorch).
    batch_transform : callable, default=None
        Applied to the inputs of every training batch (augmentation); never
        to validation or prediction batches.
    lr_groups : list of (list of str, float), default=None
        Optimizer parameter groups as parameter names and learning rates
        (layer-wise learning-rate decay); ``None``: one group at ``lr``.
    freeze_bn : bool or 'all', default=False
        Keep batch-norm layers whose parameters are frozen in eval mode
        while training, so their running statistics stay as pretrained;
        ``'all'`` keeps every batch-norm layer in eval mode (after an
        unfreeze).
    balanced_batches : bool, default=False
        Train on batches of nearly equal size (at most ``batch_size``)
        instead of full batches and a smaller remainder; see
        :class:`~skcnn._data.BatchIterator`.
    group_by_length : bool, default=False
        Batch series of similar lengths together in training (series of
        unequal lengths); see :func:`skcnn._data.group_by_length`.
    record_batch_loss : bool, default=False
        Write each batch's loss to the history as soon as the batch ends, so
        that callbacks see the running loss (one device synchronisation per
        batch); ``False`` reads all of an epoch's losses back at its end.
    checkpoint : skcnn._checkpoint.Checkpoint, default=None
        Saved after every epoch (once all callbacks have run) and restored
        at the start of training.
    sigint : dict, default=None
        From :func:`skcnn._guards.watch_sigint`: tells a Ctrl-C apart from
        a callback that stops training.

    Attributes (beyond skorch's)
    ----------------------------
    epochs_done_ : int
        Epochs of the last ``partial_fit`` whose callbacks all ran.
    stop_ : {None, 'callback', 'interrupt'}
        How the last ``partial_fit`` ended early: a callback stopped it
        (early stopping), or a ``KeyboardInterrupt`` (Ctrl-C) did.
    dist_info : skcnn._distributed.DistInfo, default=None
        Rank and world size of a data-parallel fit (torchrun): training
        batches are this rank's shard, the module trains wrapped in
        ``DistributedDataParallel`` and the recorded losses are averaged
        over the ranks; see :mod:`skcnn._distributed`.
    sync_batch_norm : bool, default=False
        In a data-parallel fit, normalise with the batch statistics of all
        ranks while training.
    """

    def __init__(self, *args, precision=None, channels_last=False, generator=None,
                 sample_shape=None, batch_transform=None, lr_groups=None,
                 freeze_bn=False, balanced_batches=False, group_by_length=False,
                 record_batch_loss=False, checkpoint=None, sigint=None, dist_info=None,
                 sync_batch_norm=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.precision = precision
        self.channels_last = channels_last
        self.generator = generator
        self.sample_shape = sample_shape
        self.batch_transform = batch_transform
        self.lr_groups = lr_groups
        self.freeze_bn = freeze_bn
        self.balanced_batches = balanced_batches
        self.group_by_length = group_by_length
        self.record_batch_loss = record_batch_loss
        self.checkpoint = checkpoint
        self.sigint = sigint
        self.dist_info = dist_info
        self.sync_batch_norm = sync_batch_norm
        # The DDP wrapper and batch-norm swaps of a data-parallel fit; a
        # dict, so that skorch does not register the wrapper as a module.
        self._dist_state = {}

    # -- building -----------------------------------------------------------
    def initialize_module(self):
        super().initialize_module()
        if self.channels_last:
            self.module_ = self.module_.to(memory_format=torch.channels_last)
        dev = torch.device(self.device)
        self.scaler_ = (torch.amp.GradScaler(dev.type)
                        if self.precision == "fp16" else None)
        return self

    def torch_compile(self, module, name):
        """Compile the network in place with :meth:`torch.nn.Module.compile`.

        skorch's own ``compile=True`` wraps every module (the criterion too)
        in a ``torch._dynamo.OptimizedModule``, which prefixes the parameter
        names with ``_orig_mod.`` and holds a compiled function that does
        not pickle. ``Module.compile`` keeps the module, its names and its
        ``state_dict`` as they are; pickling drops the compiled function
        (torch's ``Module.__getstate__``), so a fitted estimator loads
        anywhere and runs eagerly there. ``compile__*`` arguments go to
        :func:`torch.compile`. The criterion is not compiled.
        """
        if self.compile and name == "module":
            module.compile(**self.get_params_for("compile"))
        return module

    def initialize_optimizer(self, triggered_directly=None):
        if self.lr_groups is None:
            return super().initialize_optimizer()
        params = dict(self.module_.named_parameters())
        kwargs = self.get_params_for("optimizer")
        kwargs.setdefault("lr", self.lr)
        groups = [{"params": [params[n] for n in names], "lr": lr}
                  for names, lr in self.lr_groups]
        self.optimizer_ = self.optimizer(groups, **kwargs)
        return self

    def restart_rates(self):
        """Set each parameter group back to its initial learning rate.

        A warm start runs the whole schedule again; schedules computed from
        the current rate (cosine annealing, a rate reduced on a plateau)
        would otherwise start from where the previous fit left the rate
        (zero, at the end of a cosine schedule).
        """
        rates = ([self.lr] * len(self.optimizer_.param_groups)
                 if self.lr_groups is None else [lr for _, lr in self.lr_groups])
        for group, lr in zip(self.optimizer_.param_groups, rates):
            group["lr"] = lr

    def _set_training(self, training=True):
        # skorch calls this before every batch, and nn.Module.train sets the
        # flag of every submodule through nn.Module.__setattr__: about 1% of
        # a small network's training step (benchmarks/bench_fit.py, digits).
        # Reading the flags is cheap; a module already wholly in the mode is
        # left alone, one with any submodule in the other mode is reset.
        # Within an epoch the submodules were listed once (run_single_epoch):
        # walking the module tree at every batch cost more than the check.
        listed = self.__dict__.get("_submodules") or {}
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if not isinstance(module, torch.nn.Module):
                continue
            subs = listed.get(name)
            if subs is None or subs[0] is not module:
                subs = tuple(module.modules())
            if any(m.training != training for m in subs):
                module.train(training)
        if training and self.freeze_bn == "all":
            for m in self.module_.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        elif training and self.freeze_bn:
            set_frozen_bn_eval(self.module_)

    # -- data ---------------------------------------------------------------
    def get_iterator(self, dataset, training=False):
        if hasattr(dataset, "loader"):  # streamed images (skcnn._image_data)
            return dataset.loader(
                self.batch_size, training=training,
                generator=self.generator if training else None,
                balanced=training and self.balanced_batches,
                pin_memory=str(self.device).startswith("cuda"))
        if not isinstance(dataset, ArrayDataset):
            return super().get_iterator(dataset, training=training)
        shard = None
        batch_size = self.batch_size
        if training and self.dist_info is not None:
            shard = (self.dist_info.rank, self.dist_info.world_size)
            batch_size = -(-batch_size // self.dist_info.world_size)
        return BatchIterator(
            dataset, batch_size, shuffle=training,
            generator=self.generator if training else None,
            drop_singleton=training, balanced=training and self.balanced_batches,
            device=self.device, shard=shard,
            group_by_length=training and self.group_by_length,
        )

    # -- the loop -----------------------------------------------------------
    def notify(self, method_name, **cb_kwargs):
        if method_name == "on_epoch_end":
            return self._end_epoch(**cb_kwargs)
        super().notify(method_name, **cb_kwargs)
        if method_name == "on_train_begin" and self.checkpoint is not None:
            self.checkpoint.restore(self)
        return None

    def _end_epoch(self, **cb_kwargs):
        try:
            super().notify("on_epoch_end", **cb_kwargs)
        except KeyboardInterrupt:
            # skorch's callbacks (EarlyStopping) stop training by raising
            # KeyboardInterrupt here; a Ctrl-C may land here too.
            if not (self.sigint and self.sigint["hit"]):
                self.stop_ = "callback"
                self.epochs_done_ += 1
                if self.checkpoint is not None:
                    self.checkpoint.save(self, stopped=True)
            raise
        self.epochs_done_ += 1
        if self.checkpoint is not None:
            self.checkpoint.save(self)

    def fit_loop(self, X, y=None, epochs=None, **kwargs):
        self.epochs_done_ = 0
        self.stop_ = None
        try:
            return super().fit_loop(X, y, epochs=epochs, **kwargs)
        except KeyboardInterrupt:
            if self.stop_ is None:
                self.stop_ = "interrupt"
            raise

    # -- data parallelism -----------------------------------------------------
    def _ensure_ddp(self):
        """Wrap the module in DDP for training (again if what trains changed)."""
        from torch.nn.parallel import DistributedDataParallel

        from ._distributed import convert_sync_batchnorm

        state = self._dist_state
        if self.sync_batch_norm and "swaps" not in state:
            state["swaps"] = convert_sync_batchnorm(self.module_)
        trainable = tuple(p.requires_grad for p in self.module_.parameters())
        if state.get("trainable") != trainable:
            dev = torch.device(self.device)
            state["ddp"] = DistributedDataParallel(
                self.module_,
                device_ids=[dev.index or 0] if dev.type == "cuda" else None)
            state["trainable"] = trainable

    def release_ddp(self):
        """Drop the DDP wrapper and restore the batch-norm layers (after fit).

        The wrapper holds the process group and does not pickle; the
        trained weights live in ``module_`` all along. The buffers (batch
        norm's running statistics, which each rank updates from its own
        batches) are averaged over the ranks, so that every rank ends
        with the same network.
        """
        from ._distributed import average_buffers, restore_batchnorm

        if self.dist_info is not None and self._dist_state:
            average_buffers(self.module_)
        restore_batchnorm(self._dist_state.get("swaps", []))
        self._dist_state = {}

    def _forward_module(self):
        ddp = self._dist_state.get("ddp")
        return ddp if ddp is not None and self.module_.training else self.module_

    # -- steps --------------------------------------------------------------
    def infer(self, x, **fit_params):
        mask = None
        if isinstance(x, dict):
            x, mask = x["x"], x["mask"]
        x = x.to(self.device) if isinstance(x, torch.Tensor) else torch.as_tensor(
            x, device=self.device)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if mask is not None:
            fit_params = {**fit_params, "mask": mask.to(self.device)}
        module = self._forward_module()
        if self.precision is None:
            return module(x, **fit_params)
        with torch.autocast(torch.device(self.device).type,
                            dtype=PRECISIONS[self.precision]):
            return module(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Mean of the per-sample losses, weighted when the batch has weights.

        The estimators build their criteria with ``reduction='none'``; the
        targets of a weighted batch come as ``{'y': yb, 'w': wb}``. Losses
        are computed in float32 whatever the autocast dtype of the logits.
        See :mod:`skcnn._losses` for the normalisation of the weights.
        """
        weight = None
        if isinstance(y_true, dict):
            y_true, weight = y_true["y"], y_true["w"].to(self.device)
        y_true = to_tensor(y_true, device=self.device)
        if training and _stacks_outputs(self.module_):
            # An ensemble in training mode: the mean of its members' own
            # losses, so that each member learns as if it were alone.
            return torch.stack([
                weighted_mean(self.criterion_(member.float(), y_true), weight)
                for member in y_pred]).mean()
        return weighted_mean(self.criterion_(y_pred.float(), y_true), weight)

    def train_step_single(self, batch, **fit_params):
        if self.batch_transform is not None:
            Xi, yi = unpack_data(batch)
            if isinstance(Xi, torch.Tensor):  # augment on the device
                Xi = Xi.to(self.device)
            batch = (self.batch_transform(Xi), yi)
        if self.scaler_ is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        if self.scaler_ is None:
            return super()._step_optimizer(step_fn)
        step_fn()
        for name in self._optimizers:
            self.scaler_.step(getattr(self, name + "_"))
        self.scaler_.update()
        return None

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, reading the batch losses back once at its end.

        With ``record_batch_loss``, each loss is recorded as its batch ends,
        as skorch does.
        """
        if iterator is None:
            return
        if self.dist_info is not None:
            if training:
                self._ensure_ddp()
            elif self._dist_state:
                # Validate the network every rank will end with: the batch
                # norm statistics averaged over the ranks.
                from ._distributed import average_buffers

                average_buffers(self.module_)
        # The submodules of each network, for _set_training at every batch;
        # dropped when the epoch ends, so that nothing pickles or copies them.
        self._submodules = {
            name: tuple(module.modules())
            for name in self._modules + self._criteria
            if isinstance(module := getattr(self, name + "_", None), torch.nn.Module)}
        try:
            self._run_batches(iterator, training, prefix, step_fn, **fit_params)
        finally:
            self._submodules = None

    def _run_batches(self, iterator, training, prefix, step_fn, **fit_params):
        losses = []
        count = 0
        # A data-parallel fit averages the losses over the ranks at the end
        # of the epoch (below), so that every rank records the same history.
        per_batch = self.record_batch_loss and self.dist_info is None
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            if per_batch:
                self.history.record_batch(prefix + "_loss", step["loss"].item())
            else:
                losses.append(step["loss"].detach())
            self.history.record_batch(prefix + "_batch_size", _batch_len(batch))
            self.notify("on_batch_end", batch=batch, training=training, **step)
            count += 1
        if losses:
            values = torch.stack(losses).float()
            if self.dist_info is not None:
                # Every rank runs as many batches: average them over the
                # ranks, so that early stopping and the LR schedules agree.
                from ._distributed import average

                values = average(values)
            values = values.cpu().tolist()
            for entry, value in zip(self.history[-1]["batches"][-len(losses):],
                                    values):
                entry[prefix + "_loss"] = value
        self.history.record(prefix + "_batch_count", count)


def _stacks_outputs(module):
    """Whether ``module`` returns its members' outputs stacked when training."""
    return isinstance(module, Ensemble) and len(module.networks) > 1


def _batch_len(batch):
    Xb, yb = batch
    if isinstance(yb, dict):
        yb = yb["y"]
    if yb is not None and hasattr(yb, "__len__") and len(yb):
        return len(yb)
    return batch_rows(Xb)


class ValidAccuracy(Callback):
    """Record ``valid_acc`` from the validation batches' logits.

    Counts correct predictions on the device as batches go and reads the
    total once per epoch. Multi-label targets (a float indicator matrix)
    count a sample as correct when all its labels are (subset accuracy, as
    ``score`` computes it).
    """

    def on_epoch_begin(self, net, **kwargs):
        self.correct_ = None
        self.total_ = 0

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        yb = batch[1]
        if isinstance(yb, dict):
            yb = yb["y"]
        yb = yb.to(y_pred.device)
        if yb.dim() == 2:  # multi-label indicator
            hits = ((y_pred > 0) == (yb > 0.5)).all(1).sum()
        else:
            hits = (y_pred.argmax(1) == yb).sum()
        self.correct_ = hits if self.correct_ is None else self.correct_ + hits
        self.total_ += len(yb)

    def on_epoch_end(self, net, **kwargs):
        if self.total_:
            net.history.record("valid_acc", self.correct_.item() / self.total_)
