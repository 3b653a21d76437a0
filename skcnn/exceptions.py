"""Exceptions and warnings raised by skcnn, for callers that want to catch them by type."""

__all__ = ["FitInterruptedWarning", "NonFiniteLossError", "UnknownBackboneError"]


class UnknownBackboneError(ValueError):
    """A backbone name that neither torchvision nor timm (nor skcnn) knows.

    A subclass of ``ValueError``; the message lists close names.
    """


class NonFiniteLossError(FloatingPointError, ValueError):
    """The training loss became NaN or infinite: ``fit`` stopped.

    A subclass of both ``FloatingPointError`` and ``ValueError``. The
    message names the epoch and suggests a lower learning rate; pass
    ``callbacks__finite_loss=None`` to the estimator to train on regardless.
    """


class FitInterruptedWarning(UserWarning):
    """``fit`` was interrupted (Ctrl-C) and kept the network trained so far."""
