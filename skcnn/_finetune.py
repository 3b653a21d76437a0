"""Pretrained backbones inside the estimators: build, freeze, per-group rates.

``CNNClassifier(architecture='resnet18', weights='DEFAULT', freeze=...,
unfreeze_at_epoch=..., lr_decay=...)`` goes through here: the backbone
comes from :func:`skcnn._backbones.load_backbone`, gets a new head sized
from ``y`` and, for grey or multi-channel images, a first convolution
adapted from its RGB filters; the normalisation of its weights' metadata
becomes the network's first layer, so the estimator is fed images in
[0, 1] like every other one.
"""

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from . import _backbones


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
        return (x - self.mean) / self.std


class PretrainedNet(nn.Module):
    """A pretrained backbone behind the normalisation its weights expect."""

    def __init__(self, backbone, mean, std):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(self.normalize(x))


def _channel_stats(values, in_channels):
    """RGB statistics for ``in_channels`` channels: averaged for grey/other."""
    values = np.asarray(values, dtype=np.float64)
    if in_channels == len(values):
        return tuple(values)
    return (float(values.mean()),) * in_channels


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
        From the stem to the new head (:func:`skcnn._backbones.layer_groups`).
    """
    backbone, meta = _backbones.load_backbone(name, weights)
    _backbones.replace_head(backbone, n_outputs)
    if in_channels != 3:
        _backbones.adapt_input_channels(backbone, in_channels)
    config = _backbones.preprocessing_config(meta)
    module = PretrainedNet(backbone, _channel_stats(config["mean"], in_channels),
                           _channel_stats(config["std"], in_channels))
    return module, _backbones.layer_groups(backbone)


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


def apply_freeze(module, groups, freeze):
    """Set ``requires_grad`` per :func:`skcnn._backbones.freeze`; frozen names."""
    return _backbones.freeze(module, groups, freeze)


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
