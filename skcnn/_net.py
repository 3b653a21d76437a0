"""The skorch net the estimators drive: skorch's machinery, a fast data path.

``_Net`` is a :class:`skorch.NeuralNet` that keeps everything skorch offers
(callbacks, ``module__*``/``optimizer__*`` routing, checkpoints, the history)
and changes only what costs time:

- an :class:`~skcnn._data.ArrayDataset` is batched by
  :class:`~skcnn._data.BatchIterator` (tensor slices) instead of a
  ``DataLoader`` over per-sample fetches;
- batch losses are read back from the device once per epoch, not once per
  batch (no per-batch synchronisation on a GPU);
- optional mixed precision (``torch.autocast``, with a gradient scaler for
  float16), ``channels_last`` memory format on CUDA, and ``torch.compile``
  of the network in place (see :meth:`_Net.torch_compile`).
"""

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from ._data import ArrayDataset, BatchIterator
from ._finetune import set_frozen_bn_eval

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
                 freeze_bn=False, balanced_batches=False, dist_info=None,
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

    def _set_training(self, training=True):
        # skorch calls this before every batch, and nn.Module.train sets the
        # flag of every submodule through nn.Module.__setattr__: about 1% of
        # a small network's training step (benchmarks/bench_fit.py, digits).
        # Reading the flags is cheap; a module already wholly in the mode is
        # left alone, one with any submodule in the other mode is reset.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and any(
                    m.training != training for m in module.modules()):
                module.train(training)
        if training and self.freeze_bn == "all":
            for m in self.module_.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        elif training and self.freeze_bn:
            set_frozen_bn_eval(self.module_)

    # -- data ---------------------------------------------------------------
    def get_iterator(self, dataset, training=False):
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
        )

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
        # Losses in float32 whatever the autocast dtype of the logits.
        return super().get_loss(y_pred.float(), y_true, X=X, training=training)

    def train_step_single(self, batch, **fit_params):
        if self.batch_transform is not None:
            Xi, yi = unpack_data(batch)
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
        """skorch's epoch, reading the batch losses back once at its end."""
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
        losses = []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            self.history.record_batch(prefix + "_batch_size", _batch_len(batch))
            self.notify("on_batch_end", batch=batch, training=training, **step)
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
        self.history.record(prefix + "_batch_count", len(losses))


def _batch_len(batch):
    Xb, yb = batch
    if yb is not None and hasattr(yb, "__len__") and len(yb):
        return len(yb)
    return len(Xb["x"] if isinstance(Xb, dict) else Xb)


class ValidAccuracy(Callback):
    """Record ``valid_acc`` from the validation batches' logits.

    Counts correct predictions on the device as batches go and reads the
    total once per epoch.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.correct_ = None
        self.total_ = 0

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if training or y_pred is None:
            return
        yb = batch[1].to(y_pred.device)
        hits = (y_pred.argmax(1) == yb).sum()
        self.correct_ = hits if self.correct_ is None else self.correct_ + hits
        self.total_ += len(yb)

    def on_epoch_end(self, net, **kwargs):
        if self.total_:
            net.history.record("valid_acc", self.correct_.item() / self.total_)
