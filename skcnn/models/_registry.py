"""A plain registry of architecture builders, in the style of torchvision.

A builder is a keyword-only function that returns an ``nn.Module`` mapping a
batch of shape ``(n, in_channels, *input_size)`` to logits of shape
``(n, n_outputs)``. Builders are registered per number of spatial
dimensions (``ndim=2`` for images, ``ndim=1`` for signals), so the same
short name (``'resnet'``) can name a 2-D and a 1-D family.
"""

import inspect

from .._utils import did_you_mean

__all__ = ["register_model", "list_models", "get_model", "get_model_builder"]

_MODELS = {1: {}, 2: {}}

# Arguments that the data fixes; the estimators fill them in.
DATA_ARGS = ("in_channels", "n_outputs", "input_size")


def _check_ndim(ndim):
    if ndim not in _MODELS:
        raise ValueError(f"ndim must be 1 (signals) or 2 (images); got {ndim!r}.")


def register_model(name=None, *, ndim=2):
    """Register an architecture builder under ``name`` (default: its ``__name__``).

    Parameters
    ----------
    name : str, default=None
        Registry name. Defaults to the builder's function name.
    ndim : {1, 2}, default=2
        Number of spatial dimensions of the inputs the network takes.

    Returns
    -------
    decorator : callable
        Registers the builder and returns it unchanged.
    """
    _check_ndim(ndim)

    def wrapper(fn):
        key = fn.__name__ if name is None else name
        if key in _MODELS[ndim]:
            raise ValueError(
                f"An architecture is already registered as {key!r} for ndim={ndim}."
            )
        missing = [a for a in DATA_ARGS if a not in inspect.signature(fn).parameters]
        if missing:
            raise TypeError(
                f"Builder {fn.__name__} must accept the keyword arguments "
                f"{list(DATA_ARGS)}; it lacks {missing}."
            )
        _MODELS[ndim][key] = fn
        return fn

    return wrapper


def list_models(ndim=2):
    """Names of the registered architectures, sorted.

    Parameters
    ----------
    ndim : {1, 2}, default=2
        ``2`` for image architectures (``CNNClassifier``, ``CNNRegressor``),
        ``1`` for signal architectures (``Conv1DClassifier``,
        ``Conv1DRegressor``).

    Returns
    -------
    names : list of str
    """
    _check_ndim(ndim)
    return sorted(_MODELS[ndim])


def get_model_builder(name, *, ndim=2):
    """Return the builder function registered as ``name``.

    Raises
    ------
    ValueError
        If no architecture of that name is registered; the message lists the
        registered names.
    """
    _check_ndim(ndim)
    try:
        return _MODELS[ndim][name]
    except (KeyError, TypeError):
        kind = "image (2-D)" if ndim == 2 else "signal (1-D)"
        raise ValueError(
            f"Unknown {kind} architecture {name!r}."
            f"{did_you_mean(name, list_models(ndim))} "
            f"Registered ones: {list_models(ndim)}."
        ) from None


def get_model(name, *, ndim=2, **config):
    """Build the registered architecture ``name`` with ``config``.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    ndim : {1, 2}, default=2
        Which registry to look in.
    **config
        Keyword arguments of the builder: ``in_channels``, ``n_outputs``,
        ``input_size`` and the architecture's own knobs.

    Returns
    -------
    module : torch.nn.Module

    Examples
    --------
    >>> from skcnn.models import get_model
    >>> net = get_model("lenet5", in_channels=1, n_outputs=10, input_size=(28, 28))
    """
    return get_model_builder(name, ndim=ndim)(**config)
