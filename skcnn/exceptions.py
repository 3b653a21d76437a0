"""Exceptions raised by skcnn, for callers that want to catch them by type."""

__all__ = ["UnknownBackboneError"]


class UnknownBackboneError(ValueError):
    """A backbone name that neither torchvision nor timm (nor skcnn) knows.

    A subclass of ``ValueError``; the message lists close names.
    """
