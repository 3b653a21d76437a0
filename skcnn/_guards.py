"""Guards around a fit: no silent failure, no lasting side effects.

- :class:`FiniteLoss`: a skorch callback that stops ``fit`` with a
  :class:`~skcnn.exceptions.NonFiniteLossError` when the training loss of an
  epoch is NaN or infinite (a learning rate too high, usually), instead of
  training on to a network that predicts garbage. ``callbacks__finite_loss=None``
  turns it off.
- :func:`fit_settings`: the global torch settings a fit changes
  (``torch.backends.cudnn.benchmark`` on CUDA), restored when it ends.
- :func:`watch_sigint`: tells a Ctrl-C (``SIGINT``) apart from the
  ``KeyboardInterrupt`` skorch's callbacks raise to stop training early.
"""

import contextlib
import math
import signal
import threading

import torch
from skorch.callbacks import Callback

from .exceptions import NonFiniteLossError

__all__ = ["FiniteLoss", "fit_settings", "watch_sigint"]


class FiniteLoss(Callback):
    """Stop training when an epoch's loss is not finite.

    Checked once per epoch, from the losses skorch records (no per-batch
    synchronisation with the device). The error names the epoch, the first
    batch whose loss was not finite, and what to try.

    Parameters
    ----------
    keys : tuple of str, default=('train_loss',)
        History keys to check at the end of every epoch.
    """

    def __init__(self, keys=("train_loss",)):
        self.keys = keys

    def on_epoch_end(self, net, **kwargs):
        entry = net.history[-1]
        for key in self.keys:
            value = entry.get(key)
            if value is None or math.isfinite(value):
                continue
            batches = [b.get(key) for b in entry.get("batches", ())]
            first = next((i for i, v in enumerate(batches)
                          if v is not None and not math.isfinite(v)), None)
            where = f" (first at batch {first + 1} of {len(batches)})" if first is not None else ""
            lr = net.lr
            raise NonFiniteLossError(
                f"The {key.replace('_', ' ')} became {value} at epoch "
                f"{entry.get('epoch', len(net.history))}{where}: training "
                f"diverged. The learning rate lr={lr:g} is probably too high for "
                f"this network and data; try a lower one (lr={lr / 10:g}), or "
                f"check the scale of X (and y). To train on regardless, pass "
                f"callbacks__finite_loss=None."
            )


def _uses_cudnn(device):
    return str(device).startswith("cuda")


@contextlib.contextmanager
def fit_settings(device):
    """Set the global torch settings a fit on ``device`` wants; restore them after.

    On CUDA, ``torch.backends.cudnn.benchmark`` is switched on (cuDNN picks
    the fastest convolution algorithms for the fixed batch shapes of
    training) and set back to its previous value when the block ends,
    however it ends. Other devices change nothing.
    """
    if not _uses_cudnn(device):
        yield
        return
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


@contextlib.contextmanager
def watch_sigint():
    """Record whether a Ctrl-C (SIGINT) arrives while the block runs.

    Yields a dict whose ``'hit'`` becomes True on SIGINT; the signal is
    then handled as before (Python's handler raises ``KeyboardInterrupt``).
    Outside the main thread, or when SIGINT has no Python handler, nothing
    is installed and ``'hit'`` stays False.
    """
    state = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield state
        return

    def handler(signum, frame):
        state["hit"] = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
