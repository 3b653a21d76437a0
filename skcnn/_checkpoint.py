"""Checkpoints written every epoch, and resuming a fit from them.

With ``checkpoint_dir`` set, the estimators' skorch net (:class:`skcnn._net._Net`)
calls :meth:`Checkpoint.save` after each epoch, once every callback has run
(early stopping's counters are up to date), and :meth:`Checkpoint.restore`
at the start of training, once the callbacks have built their state (the
learning-rate scheduler exists and can take its saved state).

A checkpoint holds everything the rest of the fit depends on: the module's
and the optimiser's state, the learning-rate scheduler's, the state of the
other callbacks (early stopping's best score, patience counter and best
weights), the gradient scaler's (``precision='fp16'``), which parameters
train (``unfreeze_at_epoch``), the history, the number of epochs done, and
the random states: torch's (CPU and CUDA), numpy's, Python's and the
generator that shuffles the batches. So a fit resumed after epoch ``k``
continues exactly as the uninterrupted fit would have: on the CPU, with the
same ``random_state``, it ends with the same weights.

The file is written to a temporary name in the same directory and moved
into place with :func:`os.replace`, so a fit killed while saving leaves the
previous checkpoint intact. It is read with ``torch.load(weights_only=True)``,
which loads tensors and plain Python values only, never code.
"""

import contextlib
import json
import os
import random
import tempfile
import zlib

import numpy as np
import torch

__all__ = ["Checkpoint", "fingerprint", "FILENAME"]

FILENAME = "checkpoint.pt"
_FORMAT = 1

# Parameters that may change between the interrupted fit and its resumption.
_FREE_PARAMS = {"checkpoint_dir", "verbose", "callbacks", "device", "warm_start"}


def fingerprint(estimator, dataset, n_outputs):
    """What a checkpoint must agree with to be resumed: parameters and data.

    Parameters are compared by ``repr`` (all but ``checkpoint_dir``,
    ``verbose``, ``callbacks``, ``device`` and ``warm_start``); the data by
    their shapes and a CRC-32 of their bytes (sample weights included).
    Streamed images: the CRC-32 of
    :meth:`skcnn._image_data.ImageSource.fingerprint` (file paths with
    their sizes and modification times; the pixels of lists of images); a
    torch ``Dataset`` ``X`` is refused with a ``ValueError``.
    """
    params = {k: repr(v) for k, v in sorted(estimator.get_params().items())
              if k not in _FREE_PARAMS}
    crc = 0
    source = getattr(dataset, "source", None)  # streamed images (skcnn._image_data)
    if source is not None:
        crc = source.fingerprint()
        if crc is None:
            raise ValueError(
                f"{type(estimator).__name__}: checkpoint_dir cannot check that "
                f"a torch Dataset X is the one a checkpoint was trained on (it "
                f"would have to read every image); pass the images as file "
                f"paths, a list or an array, or set checkpoint_dir=None."
            )
        tensors = (dataset.y, getattr(dataset, "weight", None))
        sample_shape = [source.channels, *source.size]
    else:
        tensors = (dataset.X, dataset.y, dataset.lengths,
                   getattr(dataset, "weight", None))
        sample_shape = list(dataset.X.shape[1:])
    for tensor in tensors:
        if tensor is not None:
            array = tensor.detach().cpu().contiguous().numpy()
            crc = zlib.crc32(memoryview(array).cast("B"), crc)
    data = {"n_samples": len(dataset), "sample_shape": sample_shape,
            "n_outputs": int(n_outputs), "crc32": crc}
    return {"estimator": type(estimator).__name__, "params": params, "data": data}


class Checkpoint:
    """The checkpoint file of one fit: read, written each epoch, restored.

    Parameters
    ----------
    directory : str or path
        Where ``checkpoint.pt`` lives; created when missing.
    fingerprint : dict
        From :func:`fingerprint`; a checkpoint of another fit is refused.
    """

    def __init__(self, directory, fingerprint):
        self.directory = os.fspath(directory)
        self.fingerprint = fingerprint
        self.pending = None  # a state to restore at the start of training
        self.start_epoch = 0  # epochs in the history before this fit

    @property
    def path(self):
        return os.path.join(self.directory, FILENAME)

    def read(self):
        """The saved state, or None when there is no checkpoint yet.

        Raises
        ------
        ValueError
            The file is not a checkpoint of this estimator, these parameters
            and this data (the message says what differs).
        """
        if not os.path.exists(self.path):
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"Cannot read the checkpoint {self.path!r} ({exc}). Remove it, "
                f"or pass another checkpoint_dir, to start a new fit."
            ) from exc
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(
                f"{self.path!r} is not a checkpoint skcnn can resume from "
                f"(format {state.get('format') if isinstance(state, dict) else None!r}, "
                f"expected {_FORMAT}). Remove it, or pass another checkpoint_dir."
            )
        saved = json.loads(state["fingerprint"])
        if saved != self.fingerprint:
            raise ValueError(
                f"checkpoint_dir={self.directory!r} holds a checkpoint of another "
                f"fit ({_differences(saved, self.fingerprint)}); a fit resumes "
                f"only with the same estimator, parameters and data. Remove "
                f"{self.path!r}, or pass another checkpoint_dir, to start anew."
            )
        return state

    # -- writing ------------------------------------------------------------
    def save(self, net, *, stopped=False):
        """Write the state of ``net`` after an epoch, atomically.

        ``stopped``: a callback (early stopping) ended training at this
        epoch, so a resumed fit has no epoch left to run.
        """
        module = net.module_
        callbacks = {}
        for name, cb in net.callbacks_:
            scheduler = getattr(cb, "lr_scheduler_", None)
            callbacks[name] = {
                "scheduler": (scheduler.state_dict()
                              if hasattr(scheduler, "state_dict") else None),
                "attrs": _plain_attrs(cb),
            }
        state = {
            "format": _FORMAT,
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            "epochs": len(net.history) - self.start_epoch,
            "stopped": bool(stopped),
            "module": module.state_dict(),
            "requires_grad": [n for n, p in module.named_parameters() if p.requires_grad],
            "freeze_bn": net.freeze_bn,
            "optimizer": net.optimizer_.state_dict(),
            "scaler": None if net.scaler_ is None else net.scaler_.state_dict(),
            "callbacks": callbacks,
            "history": json.dumps(list(net.history), default=_json_default),
            "rng": _rng_state(net),
        }
        os.makedirs(self.directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp",
                                   dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise

    # -- resuming -----------------------------------------------------------
    def restore(self, net):
        """Put the pending state into ``net`` (after the callbacks' on_train_begin)."""
        state, self.pending = self.pending, None
        if state is None:
            return
        from skorch.history import History

        module = net.module_
        module.load_state_dict(state["module"])
        trainable = set(state["requires_grad"])
        for name, p in module.named_parameters():
            p.requires_grad_(name in trainable)
        net.freeze_bn = state["freeze_bn"]
        net.history = History(json.loads(state["history"]))
        callbacks = dict(net.callbacks_)
        for name, saved in state["callbacks"].items():
            cb = callbacks.get(name)
            if cb is None:
                continue
            scheduler = getattr(cb, "lr_scheduler_", None)
            if saved["scheduler"] is not None and scheduler is not None:
                scheduler.load_state_dict(saved["scheduler"])
            for key, value in saved["attrs"].items():
                setattr(cb, key, _on_device(value, net.device))
        # After the scheduler: its construction resets the learning rates,
        # the optimiser's state holds the ones reached.
        net.optimizer_.load_state_dict(state["optimizer"])
        if state["scaler"] is not None and net.scaler_ is not None:
            net.scaler_.load_state_dict(state["scaler"])
        _set_rng_state(net, state["rng"])


def _differences(saved, current):
    parts = []
    if saved.get("estimator") != current.get("estimator"):
        parts.append(f"estimator {saved.get('estimator')} instead of "
                     f"{current.get('estimator')}")
    sp, cp = saved.get("params", {}), current.get("params", {})
    changed = sorted(k for k in set(sp) | set(cp) if sp.get(k) != cp.get(k))
    if changed:
        parts.append("parameters " + ", ".join(
            f"{k}={sp.get(k, '<unset>')} (now {cp.get(k, '<unset>')})" for k in changed))
    sd, cd = saved.get("data", {}), current.get("data", {})
    if sd != cd:
        parts.append(
            f"data: {sd.get('n_samples')} samples of shape "
            f"{tuple(sd.get('sample_shape', ()))} then, {cd.get('n_samples')} of "
            f"shape {tuple(cd.get('sample_shape', ()))} now"
            + (", other values" if sd.get("n_samples") == cd.get("n_samples") else ""))
    return "; ".join(parts) or "unknown difference"


def _rng_state(net):
    np_state = np.random.get_state()
    py_state = random.getstate()
    cuda = None
    if str(net.device).startswith("cuda") and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    return {
        "torch": torch.get_rng_state(),
        "cuda": cuda,
        "generator": None if net.generator is None else net.generator.get_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def _set_rng_state(net, rng):
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available() and len(
            rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    if rng["generator"] is not None and net.generator is not None:
        net.generator.set_state(rng["generator"])
    kind, key, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))


class _NotPlain(Exception):
    pass


def _to_plain(value):
    """``value`` as tensors and plain Python values, or raise _NotPlain."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (list, tuple)):
        return type(value)(_to_plain(v) for v in value)
    if isinstance(value, dict):
        if not all(isinstance(k, (str, int)) for k in value):
            raise _NotPlain
        return type(value)((k, _to_plain(v)) for k, v in value.items())
    raise _NotPlain


def _plain_attrs(callback):
    """A callback's learned state (``name_`` attributes) that saves as plain data.

    The scheduler object is saved through its ``state_dict``; handles such as
    a progress bar's are skipped.
    """
    attrs = {}
    for key, value in vars(callback).items():
        if not key.endswith("_") or key.startswith("_") or key in (
                "lr_scheduler_", "policy_"):
            continue
        try:
            attrs[key] = _to_plain(value)
        except _NotPlain:
            continue
    return attrs


def _on_device(value, device):
    """Tensors of a callback's state back on the training device."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return type(value)((k, _on_device(v, device)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_on_device(v, device) for v in value)
    return value


def _json_default(value):
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the history")
