"""Ensembles of independently trained networks (InceptionTime's, generalised).

:class:`Ensemble` holds ``k`` networks of the same shape. In training mode
(with ``k > 1``) its forward returns their outputs stacked, ``(k, n, ...)``, and the
estimators' loss is the mean of the members' own losses
(:meth:`skcnn._net._Net.get_loss`): each member's gradients are those it
would get if it were trained alone on the same batches, so the members stay
independent, as in the InceptionTime paper. In evaluation mode (prediction,
validation) the forward returns the members' mean output.
"""

import inspect

import torch
from torch import nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """Networks trained side by side on their own losses, averaged to predict.

    Parameters
    ----------
    networks : sequence of nn.Module
        The members, of the same input and output shapes, each with its own
        initialisation.

    Notes
    -----
    The averaged output is the mean of the members' logits (for a
    classifier, the normalised geometric mean of their probabilities; for a
    regressor, the mean prediction). Fitting and predicting cost ``k``
    times one member's time and memory.
    """

    def __init__(self, networks):
        super().__init__()
        networks = list(networks)
        if not networks:
            raise ValueError("Ensemble needs at least one network; got none.")
        self.networks = nn.ModuleList(networks)

    def forward(self, x, mask=None, **kwargs):
        """Stacked outputs ``(k, n, ...)`` in training mode, their mean otherwise.

        A single network's output is returned as it is, in both modes.
        ``mask``, when given, goes to every member.
        """
        if mask is not None:
            kwargs["mask"] = mask
        if len(self.networks) == 1:
            return self.networks[0](x, **kwargs)
        outputs = torch.stack([net(x, **kwargs) for net in self.networks])
        return outputs if self.training else outputs.mean(dim=0)


def takes_mask(module):
    """Whether ``module.forward`` accepts a ``mask`` (an ensemble: its members').

    A wrapper that passes the mask on (:class:`skcnn.models._scale.KeepScale`)
    takes one when the network it wraps does.
    """
    if isinstance(module, Ensemble):
        return takes_mask(module.networks[0])
    from ._scale import KeepScale

    if isinstance(module, KeepScale):
        return takes_mask(module.network)
    return "mask" in inspect.signature(module.forward).parameters
