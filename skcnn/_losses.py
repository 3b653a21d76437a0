"""Training losses of the estimators, and per-sample weighting.

Every built-in loss is built with ``reduction='none'``: the skorch net
(:meth:`skcnn._net._Net.get_loss`) averages a batch's per-sample losses
itself, weighted by the samples' weights when ``fit`` was given
``sample_weight`` or ``class_weight``.

Weights are normalised once per ``fit`` to a mean of 1 over the training
samples, and a batch's loss is ``mean(w_i * l_i)`` over its samples. So a
batch's loss is an unbiased estimate of the weighted loss of the whole
training set, ``sum(w_i l_i) / sum(w_i)``; multiplying all weights by a
constant changes nothing; and equal weights train exactly as no weights.
Normalising per batch instead (``sum(w_i l_i) / sum(w_i)`` over a batch)
would let a sample's influence depend on the weights of the samples it
happens to be batched with: a batch of samples of weight 0.01 would count as
much as a batch of samples of weight 1.
"""

import inspect

import torch.nn.functional as F
from torch import nn

__all__ = ["CLASSIFIER_LOSSES", "REGRESSOR_LOSSES", "FocalLoss", "criterion_for",
           "takes_reduction", "weighted_mean"]

CLASSIFIER_LOSSES = ("cross_entropy", "focal")
REGRESSOR_LOSSES = ("mse", "mae", "huber")


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017) on logits, per sample.

    ``-(1 - p_t)^gamma log(p_t)``: cross-entropy whose well-classified
    samples (``p_t`` near 1) weigh little, so that training concentrates on
    the hard ones (rare classes, ambiguous samples). ``gamma=0`` is
    cross-entropy.

    Parameters
    ----------
    gamma : float, default=2.0
        Focusing strength; 2 is the value of the paper.
    label_smoothing : float in [0, 1), default=0.0
        Targets ``(1 - eps) * onehot + eps / n_classes`` (per label ``y (1 -
        eps) + eps / 2`` when multi-label).
    multilabel : bool, default=False
        Logits of independent labels (sigmoid) instead of classes (softmax);
        targets are then a float indicator matrix.
    reduction : {'none', 'mean', 'sum'}, default='none'
    """

    def __init__(self, gamma=2.0, label_smoothing=0.0, multilabel=False,
                 reduction="none"):
        super().__init__()
        self.gamma = gamma
        self.label_smoothing = label_smoothing
        self.multilabel = multilabel
        self.reduction = reduction

    def forward(self, logits, target):
        eps = self.label_smoothing
        if self.multilabel:
            q = target * (1 - eps) + eps / 2
            log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
            p = log_p.exp()
            loss = -(q * (1 - p) ** self.gamma * log_p
                     + (1 - q) * p ** self.gamma * log_not_p)
        else:
            n_classes = logits.shape[1]
            q = F.one_hot(target, n_classes).to(logits.dtype)
            q = q * (1 - eps) + eps / n_classes
            log_p = F.log_softmax(logits, dim=1)
            loss = -(q * (1 - log_p.exp()) ** self.gamma * log_p).sum(1)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss


class SmoothedBCEWithLogits(nn.BCEWithLogitsLoss):
    """Binary cross-entropy on logits with label smoothing (``y (1-eps) + eps/2``)."""

    def __init__(self, label_smoothing=0.0, reduction="none"):
        super().__init__(reduction=reduction)
        self.label_smoothing = label_smoothing

    def forward(self, logits, target):
        eps = self.label_smoothing
        return super().forward(logits, target * (1 - eps) + eps / 2)


def takes_reduction(loss_class):
    """Whether a loss class's constructor takes ``reduction``."""
    try:
        return "reduction" in inspect.signature(loss_class).parameters
    except (TypeError, ValueError):
        return False


def criterion_for(loss, task, label_smoothing=0.0, weighted=False, name="estimator"):
    """The criterion class and its arguments for ``loss`` and a task.

    Parameters
    ----------
    loss : str or nn.Module subclass
        A name of :data:`CLASSIFIER_LOSSES` or :data:`REGRESSOR_LOSSES`, or
        a torch loss class (built with ``reduction='none'`` when it takes
        that argument, so that samples can be weighted).
    task : {'multiclass', 'multilabel', 'regression'}
    label_smoothing : float, default=0.0
        Classifiers' built-in losses only.
    weighted : bool, default=False
        Whether samples carry weights (they need per-sample losses).
    name : str
        Estimator name, for error messages.

    Returns
    -------
    criterion : type
    kwargs : dict
    """
    if isinstance(loss, type):
        if not issubclass(loss, nn.Module):
            raise TypeError(
                f"{name}: loss must be a name or a torch loss class (a "
                f"torch.nn.Module subclass such as torch.nn.SmoothL1Loss); got "
                f"{loss!r}."
            )
        if label_smoothing:
            raise ValueError(
                f"{name}: label_smoothing={label_smoothing} applies to the "
                f"built-in losses 'cross_entropy' and 'focal'; with loss="
                f"{loss.__name__} pass the smoothing to the class itself "
                f"(criterion__<name>=value)."
            )
        if takes_reduction(loss):
            return loss, {"reduction": "none"}
        if weighted:
            raise ValueError(
                f"{name}: sample_weight and class_weight need per-sample losses, "
                f"but loss={loss.__name__} takes no 'reduction' argument; give "
                f"it one that accepts reduction='none'."
            )
        return loss, {}
    if task == "regression":
        if loss == "mse":
            return nn.MSELoss, {"reduction": "none"}
        if loss == "mae":
            return nn.L1Loss, {"reduction": "none"}
        if loss == "huber":
            return nn.HuberLoss, {"reduction": "none", "delta": 1.0}
        allowed = REGRESSOR_LOSSES
    else:
        multilabel = task == "multilabel"
        smoothing = float(label_smoothing)
        if loss == "cross_entropy":
            if multilabel:
                return SmoothedBCEWithLogits, {"reduction": "none",
                                               "label_smoothing": smoothing}
            return nn.CrossEntropyLoss, {"reduction": "none",
                                         "label_smoothing": smoothing}
        if loss == "focal":
            return FocalLoss, {"reduction": "none", "gamma": 2.0,
                               "label_smoothing": smoothing,
                               "multilabel": multilabel}
        allowed = CLASSIFIER_LOSSES
    raise ValueError(
        f"{name}: loss must be one of {list(allowed)} or a torch loss class; "
        f"got {loss!r}."
    )


def per_sample(loss):
    """Reduce a criterion's output to one loss per sample (or keep a scalar)."""
    if loss.dim() <= 1:  # a scalar, or already one loss per sample
        return loss
    return loss.reshape(len(loss), -1).mean(1)


def weighted_mean(loss, weight):
    """Mean of per-sample losses, weighted by (mean-1 normalised) weights."""
    loss = per_sample(loss)
    if loss.dim() == 0:
        return loss
    if weight is None:
        return loss.mean()
    return (loss * weight.to(loss.dtype)).mean()

