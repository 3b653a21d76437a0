"""What ``weights``, ``freeze``, ``unfreeze_at_epoch`` and ``lr_decay`` mean.

Everything the estimators do to fine-tune a network lives here:

- :func:`build_pretrained`: ``CNNClassifier(architecture='resnet18',
  weights='DEFAULT')`` gets a backbone from :func:`skcnn._backbones.load_backbone`,
  a new head sized from ``y`` and, for grey or multi-channel images, a
  first convolution adapted from its RGB filters; the normalisation of its
  weights' metadata becomes the network's first layer (:class:`Normalize`),
  so the estimator is fed images in [0, 1] like every other one.
- :func:`load_weights`: ``weights=<file>`` for a built-in or user network.
- :func:`layer_groups` and :func:`freeze_groups`: ``freeze``; frozen batch-norm
  layers stay in eval mode (:func:`set_frozen_bn_eval`).
- :func:`name_groups`: ``lr_decay``, per-group learning rates.
- :class:`Unfreeze`: ``unfreeze_at_epoch``.
"""

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from . import _backbones
from ._images import normalize, preprocessing_config

__all__ = ["Normalize", "PretrainedNet", "Unfreeze", "build_pretrained", "configure", "freeze_groups",
           "layer_groups", "load_weights", "name_groups", "set_frozen_bn_eval"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, as the network's first layer.

    Parameters
    ----------
    mean, std : sequence of float
        One value per input channel.
    """

    def __init__(self, mean, std):
        super().__init__()
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(shape))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(shape))

    def forward(self, x):
        return normalize(x, self.mean, self.std)


class PretrainedNet(nn.Module):
    """A pretrained backbone behind the normalisation its weights expect."""

    def __init__(self, backbone, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(self.normalize(x))


def stats_for_channels(values, in_channels):
    """Per-channel RGB statistics for ``in_channels`` channels.

    One channel (grey) gets the mean of the RGB values; more channels get
    the RGB values repeated, channel ``k`` those of colour ``k % 3``, as
    :func:`skcnn._backbones.adapt_input_channels` repeats the filters (so
    RGBA or RGB + near-infrared images keep their colour statistics).
    """
    values = np.asarray(values, dtype=np.float64)
    if in_channels == len(values):
        return tuple(float(v) for v in values)
    if in_channels == 1:
        return (float(values.mean()),)
    return tuple(float(values[k % len(values)]) for k in range(in_channels))


def build_pretrained(name, weights, *, in_channels, n_outputs):
    """A torchvision/timm backbone ready to fine-tune, and its layer groups.

    Parameters
    ----------
    name : str
        Backbone name accepted by :func:`skcnn._backbones.load_backbone`.
    weights : str, path or None
        Its weights (``'DEFAULT'``, a weights name, a file, or ``None``).
    in_channels : int
        Channels of the user's images; the first convolution is adapted
        (summed RGB filters for one channel) when it is not 3.
    n_outputs : int
        Size of the new head.

    Returns
    -------
    module : PretrainedNet
    groups : list of (str, list of Parameter)
        From the stem to the new head (:func:`layer_groups`).

    Raises
    ------
    skcnn.exceptions.UnknownBackboneError
        ``name`` is neither a torchvision nor a timm model.
    """
    backbone, meta = _backbones.load_backbone(name, weights)
    _backbones.replace_head(backbone, n_outputs)
    if in_channels != 3:
        _backbones.adapt_input_channels(backbone, in_channels)
    config = preprocessing_config(meta)
    module = PretrainedNet(backbone, stats_for_channels(config["mean"], in_channels),
                           stats_for_channels(config["std"], in_channels))
    return module, layer_groups(backbone)


def load_weights(module, weights, architecture):
    """Load ``weights`` (a state-dict file) into a built-in or user network.

    Parameters
    ----------
    module : nn.Module
        The network built from the data.
    weights : str or os.PathLike
        Path of a state dict saved from a network of the same shape.
    architecture : str or type
        The estimator's ``architecture``, named in the error message.

    Raises
    ------
    ValueError
        ``weights`` names pretrained weights (``'DEFAULT'``...), which only
        torchvision/timm backbones have.
    """
    if not _backbones.is_weights_file(weights):
        raise ValueError(
            f"weights={weights!r} names pretrained weights, which only "
            f"torchvision/timm backbones have (e.g. architecture="
            f"'resnet18'); for {architecture!r} pass the path of a state-dict "
            f"file saved from a network of the same shape."
        )
    _backbones.read_state_dict_into(module, weights)


# --------------------------------------------------------------------------
# Layer groups and freezing (``freeze``)
# --------------------------------------------------------------------------

# Containers whose children are the stages or blocks of a network.
_EXPAND = {"features", "layers", "blocks", "stages", "trunk_output", "encoder"}


def layer_groups(module):
    """Parameters grouped by depth, from the stem (input side) to the head.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    groups : list of (str, list of Parameter)
        Each top-level child is a group, and the children of the stage
        containers (``features``, ``layers``, ``blocks``, ``stages``,
        ``trunk_output``, ``encoder``) are one group each. Leading single
        layers (modules holding all their parameters themselves, such as
        ``conv1`` and ``bn1``) and loose parameters (ViT's class token
        and position embedding) make a ``'stem'`` group; single layers
        between the last block and the head are merged (``'conv_head+bn2'``).
        The classification layer (see :func:`skcnn._backbones.replace_head`) is the last
        group; the other layers of a classifier block come before it.
        Examples: ResNet ``stem, layer1..layer4, fc``; EfficientNet
        ``features.0 ... features.8, classifier.1``; ViT ``stem,
        encoder.layers.encoder_layer_0..11, encoder.ln, heads.head``.
        Layers without parameters are left out.
    """
    head = _backbones.head_name(module)
    loose, entries = [], []

    def visit(container, prefix):
        loose.extend(container.parameters(recurse=False))
        for child_name, child in container.named_children():
            name = prefix + child_name
            if name == head:
                continue
            if (head or "").startswith(name + ".") or child_name in _EXPAND:
                visit(child, name + ".")
            else:
                params = list(child.parameters())
                if params:  # a single layer holds all its parameters itself
                    single = len(params) == len(list(child.parameters(recurse=False)))
                    entries.append((name, single, params))

    visit(module, "")
    n_leading = 0
    while n_leading < len(entries) and entries[n_leading][1]:
        n_leading += 1
    if n_leading == len(entries):  # only single layers: one group each
        groups = [("stem", loose)] + [(name, ps) for name, _, ps in entries]
    else:
        stem = loose + [p for _, _, ps in entries[:n_leading] for p in ps]
        groups = [("stem", stem)]
        run = []  # consecutive single layers after the stem are merged
        for name, is_leaf, params in entries[n_leading:]:
            if is_leaf:
                run.append((name, params))
                continue
            groups.extend(_merge(run))
            run = []
            groups.append((name, params))
        groups.extend(_merge(run))
    if head is not None:
        params = list(module.get_submodule(head).parameters())
        if params:
            groups.append((head, params))
    return _dedupe(groups)


def _merge(items):
    if not items:
        return []
    return [("+".join(n for n, _ in items), [p for _, ps in items for p in ps])]


def _dedupe(groups):
    seen, result = set(), []
    for name, params in groups:
        kept = [p for p in params if id(p) not in seen]
        seen.update(id(p) for p in kept)
        if kept:
            result.append((name, kept))
    return result


def freeze_groups(module, groups=None, freeze="backbone"):
    """Choose which layer groups train, by setting ``requires_grad``.

    Frozen batch-norm layers are put in eval mode, so their running
    statistics are not updated while they are frozen; ``module.train()``
    undoes that, so call :func:`set_frozen_bn_eval` after it.

    Parameters
    ----------
    module : nn.Module
    groups : list of (str, list of Parameter), default=None
        From :func:`layer_groups` (computed when None); the last is the head.
    freeze : {'backbone', 'none'} or int, default='backbone'
        ``'backbone'``: only the head trains; an int ``k``: the last ``k``
        groups before the head and the head train (``0`` is
        ``'backbone'``; ``k`` beyond the number of groups trains all);
        ``'none'``: all groups train.

    Returns
    -------
    frozen : list of str
        Names of the frozen groups, from the stem on.
    """
    if groups is None:
        groups = layer_groups(module)
    n = len(groups)
    if freeze == "backbone":
        n_frozen = n - 1
    elif freeze == "none":
        n_frozen = 0
    elif isinstance(freeze, int) and not isinstance(freeze, bool) and freeze >= 0:
        n_frozen = max(n - 1 - freeze, 0)
    else:
        raise ValueError(
            f"freeze must be 'backbone', 'none' or a non-negative int; got {freeze!r}."
        )
    for i, (_, params) in enumerate(groups):
        for p in params:
            p.requires_grad_(i >= n_frozen)
    set_frozen_bn_eval(module)
    return [name for name, _ in groups[:n_frozen]]


def set_frozen_bn_eval(module):
    """Put batch-norm layers whose parameters are all frozen in eval mode.

    Call it after each ``module.train()`` while layers are frozen: in eval
    mode a batch-norm layer normalises with its stored running statistics
    and does not update them. Layers without affine parameters are left
    as they are.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    module : nn.Module
    """
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            params = list(sub.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                sub.eval()
    return module


# --------------------------------------------------------------------------
# Per-group learning rates (``lr_decay``) and the two-phase recipe
# --------------------------------------------------------------------------

def name_groups(module, groups, lr, lr_decay):
    """``[(parameter names, lr)]`` per group, the head at ``lr``.

    Group ``i`` counted back from the head gets ``lr * lr_decay ** i``.
    Frozen parameters are included (at their group's rate) so that
    unfreezing them later needs no new optimizer; while frozen they have
    no gradient and the optimizer leaves them alone.
    """
    names = {id(p): n for n, p in module.named_parameters()}
    n = len(groups)
    out = []
    for i, (_, params) in enumerate(groups):
        group = [names[id(p)] for p in params if id(p) in names]
        if group:
            out.append((group, lr * lr_decay ** (n - 1 - i)))
    covered = {name for group, _ in out for name in group}
    rest = [name for name in names.values() if name not in covered]
    if rest:  # parameters outside the backbone's groups train with the head
        out.append((rest, lr))
    return out


def configure(module, groups, *, freeze, unfreeze_at_epoch, lr, lr_decay):
    """Apply ``freeze`` to a freshly built network; its per-group rates.

    Parameters
    ----------
    module : nn.Module
    groups : list of (str, list of Parameter)
        From :func:`layer_groups`, the head last.
    freeze, unfreeze_at_epoch, lr, lr_decay
        The estimator's parameters of those names.

    Returns
    -------
    lr_groups : list of (list of str, float) or None
        From :func:`name_groups`; ``None`` when ``lr_decay`` is 1 (one rate).
    """
    if unfreeze_at_epoch is not None and freeze == "none":
        raise ValueError(
            "unfreeze_at_epoch unfreezes layers frozen by `freeze`; set "
            "freeze='backbone' or an int, or unfreeze_at_epoch=None."
        )
    freeze_groups(module, groups, freeze)
    if lr_decay == 1.0:
        return None
    return name_groups(module, groups, lr, lr_decay)


class Unfreeze(Callback):
    """Unfreeze every layer at the start of epoch ``epoch`` (0-based).

    The two-phase recipe: train the new head on a frozen backbone, then
    fine-tune everything (with ``lr_decay``, earlier layers more slowly).
    Batch-norm layers stay in eval mode after the unfreeze (their pretrained
    running statistics are kept), as Keras' fine-tuning guide recommends.

    Parameters
    ----------
    epoch : int
        Epoch at whose start all parameters become trainable.
    """

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) - 1 == self.epoch:
            for p in net.module_.parameters():
                p.requires_grad_(True)
            # Batch norm keeps the statistics the head was trained on: switching
            # to per-batch statistics at the unfreeze would change every
            # feature at once and undo the first phase.
            net.freeze_bn = "all"
            net.module_.train()
