"""Small helpers shared by the estimators: device choice and seeding."""

import contextlib
import difflib

import numpy as np
import torch

from ._parallel import worker_index


def resolve_device(device):
    """Turn ``'auto'`` into ``'cuda'`` when CUDA is available, else ``'cpu'``.

    With several GPUs, ``'auto'`` inside a worker (``LOCAL_RANK`` of
    torchrun, a Dask worker, a Ray or joblib loky worker process) picks
    ``cuda:<worker index % device count>``, so that the fits of a search
    spread over the GPUs; outside a worker it is ``'cuda'`` (the current
    device).

    Parameters
    ----------
    device : str or torch.device
        ``'auto'``, ``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'mps'``...

    Returns
    -------
    device : str
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(
            f"device must be 'auto' or a torch device string such as 'cpu' or "
            f"'cuda'; got {device!r}."
        )
    if device == "auto":
        if not torch.cuda.is_available():
            return "cpu"
        count = torch.cuda.device_count()
        index = worker_index() if count > 1 else None
        return "cuda" if index is None else f"cuda:{index % count}"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device must be 'auto' or a torch device string such as 'cpu' or "
            f"'cuda'; got {device!r}."
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this "
            "machine; use device='auto' or 'cpu'."
        )
    return device


def seed_from(random_state):
    """An integer torch seed drawn from a scikit-learn ``random_state``.

    ``None`` returns ``None`` (use torch's global generator unseeded).
    """
    if random_state is None:
        return None
    if isinstance(random_state, (int, np.integer)):
        return int(random_state) % (2**63)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    raise TypeError(
        f"random_state must be None, an int or a numpy RandomState; "
        f"got {random_state!r}."
    )


@contextlib.contextmanager
def torch_seed(seed, device="cpu"):
    """Run the block with torch's RNG seeded to ``seed``, restoring it after.

    The caller's own torch random state is left as it was, so seeding an
    estimator never changes the random numbers the rest of a program draws.
    With ``seed=None`` the block runs on the global generator, unchanged.
    """
    if seed is None:
        yield
        return
    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.device(device).index or 0]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def did_you_mean(word, choices, n=1):
    """`` Did you mean 'x'?`` (``n=1``) or `` Did you mean [...]?``, or ``''``.

    The suffix of an error message about an unknown name: the entries of
    ``choices`` closest to ``word`` (``difflib``), without repeats.
    """
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(dict.fromkeys(choices)), n=n)
    if not close:
        return ""
    return f" Did you mean {close[0]!r}?" if n == 1 else f" Did you mean {close}?"
