"""Saving and loading fitted estimators without pickle, and ONNX export.

:func:`save` writes one `safetensors <https://huggingface.co/docs/safetensors>`_
file: the network's weights (and the loss's tensor arguments, such as class
weights) as tensors, and in its metadata a JSON document with the
estimator's class, its parameters, its fitted attributes (``classes_``,
``input_shape_``, ``n_features_in_``, ``feature_names_in_``, the target
scaling of regressors...) and the training history.

:func:`load` rebuilds the estimator from that file. It never unpickles and
never imports a module the file names: the JSON holds plain values, arrays
and tagged class names, and a class name is only accepted when it names a
class of torch or skcnn, or one of the classes the caller passes in
``architectures`` (a user's ``nn.Module``, optimiser or loss). The network
is rebuilt by the same code that built it in ``fit`` (from the parameters
and the data's shapes), with ``weights=None`` (nothing is read or
downloaded), and takes the saved weights. Tensors are read on the CPU, so a
model trained on CUDA loads on a machine without a GPU.

:func:`export_onnx` exports the network with what the estimator does around
it: the per-series scaling of ``normalize`` (1-D estimators), the softmax of
classifiers, the target scaling of regressors. Pretrained backbones carry
their input normalisation as their first layer already.
"""

import copy
import inspect
import json
import os
import sys
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from . import models
from ._utils import resolve_device, torch_seed
from .models._masking import masked_moments

__all__ = ["save", "load", "export_onnx"]

_FORMAT = "skcnn"
_VERSION = 1
_META_KEY = "skcnn"


def _estimator_classes():
    from .classifier import CNNClassifier, Conv1DClassifier
    from .regressor import CNNRegressor, Conv1DRegressor

    return {c.__name__: c for c in (CNNClassifier, CNNRegressor, Conv1DClassifier,
                                     Conv1DRegressor)}


def _require_safetensors():
    try:
        import safetensors.torch  # noqa: F401
        from safetensors import safe_open  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "skcnn.save and skcnn.load need the safetensors package: "
            "pip install 'skcnn[safe]'"
        ) from exc


# ---------------------------------------------------------------------------
# JSON encoding of parameters and fitted attributes
# ---------------------------------------------------------------------------

class _Unencodable(TypeError):
    pass


def _class_name(cls):
    return f"{cls.__module__}:{cls.__qualname__}"


def _encode(value):
    """``value`` as JSON-compatible data, tagging what JSON lacks."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and type(value) in (int, float):
        return value
    if isinstance(value, np.dtype):  # e.g. the dtype of multi-label targets
        return {"__npdtype__": value.str}
    if isinstance(value, np.generic):
        return {"__npscalar__": value.item(), "dtype": value.dtype.str}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            items = value.ravel().tolist()
            if not all(isinstance(v, (str, int, float, bool)) or v is None
                       for v in items):
                raise _Unencodable("an object array of non-scalar values")
        elif value.dtype.kind not in "biufU":
            raise _Unencodable(f"an array of dtype {value.dtype}")
        return {"__ndarray__": value.ravel().tolist(), "dtype": value.dtype.str,
                "shape": list(value.shape)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, type):
        return {"__class__": _class_name(value)}
    if callable(value) and hasattr(value, "__qualname__") and hasattr(value, "__module__"):
        return {"__function__": _class_name(value)}
    raise _Unencodable(f"a {type(value).__name__}")


class _Decoder:
    """Decode :func:`_encode`'s output; classes come from an allowlist only."""

    def __init__(self, allowed):
        self.allowed = allowed  # {"module:qualname": obj} and {"qualname": obj}

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {self(k): self(v) for k, v in value["__dict__"]}
        if "__ndarray__" in value:
            dtype = np.dtype(value["dtype"])
            return np.array(value["__ndarray__"], dtype=dtype).reshape(value["shape"])
        if "__npdtype__" in value:
            return np.dtype(value["__npdtype__"])
        if "__npscalar__" in value:
            return np.dtype(value["dtype"]).type(value["__npscalar__"])
        if "__class__" in value or "__function__" in value:
            return self.resolve(value.get("__class__") or value["__function__"])
        return {k: self(v) for k, v in value.items()}

    def resolve(self, name):
        """The class/function called ``name``: the caller's, torch's or skcnn's.

        A module is never imported here: torch's and skcnn's are imported
        already, and anything else must come from ``architectures``.
        """
        module_name, _, qualname = name.partition(":")
        for key in (name, qualname):
            if key in self.allowed:
                return self.allowed[key]
        if module_name.split(".")[0] in ("torch", "skcnn"):
            obj = sys.modules.get(module_name)
            for part in qualname.split("."):
                obj = getattr(obj, part, None)
            if obj is not None and (inspect.isclass(obj) or inspect.isfunction(obj)):
                return obj
        raise ValueError(
            f"The file names {qualname!r} (from module {module_name!r}), which is "
            f"neither part of torch nor of skcnn. skcnn.load never imports code "
            f"named in a file: pass the class yourself, "
            f"skcnn.load(path, architectures=[{qualname.split('.')[-1]}])."
        )


def _allowed(architectures):
    if architectures is None:
        return {}
    if isinstance(architectures, dict):
        items = list(architectures.items())
    elif isinstance(architectures, (list, tuple, set)):
        items = [(getattr(a, "__qualname__", None), a) for a in architectures]
    else:
        items = [(getattr(architectures, "__qualname__", None), architectures)]
    allowed = {}
    for key, obj in items:
        if not callable(obj) or key is None:
            raise TypeError(
                f"architectures must be a list of classes (nn.Module subclasses, "
                f"optimisers, losses) or model builders, or a dict of them by "
                f"name; got {obj!r}."
            )
        allowed[key] = obj
        if hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
            allowed[_class_name(obj)] = obj
            allowed.setdefault(obj.__qualname__, obj)
    return allowed


# ---------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------

def _architecture_info(estimator):
    arch = estimator.architecture
    ndim = estimator._ndim
    if isinstance(arch, str):
        if arch in models.list_models(ndim):
            builder = models.get_model_builder(arch, ndim=ndim)
            kind = "builtin" if builder.__module__.startswith("skcnn.") else "registered"
        else:
            kind = "backbone"
        return {"kind": kind, "name": arch, "ndim": ndim}
    return {"kind": "class", "name": _class_name(arch), "ndim": ndim}


def save(estimator, path):
    """Save a fitted estimator to one safetensors file, without pickle.

    Parameters
    ----------
    estimator : CNNClassifier, CNNRegressor, Conv1DClassifier or Conv1DRegressor
        A fitted estimator.
    path : str or path-like
        File to write (``.safetensors`` is the usual suffix); overwritten
        if it exists.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.
    TypeError
        A fitted attribute cannot be stored as JSON.

    Warns
    -----
    UserWarning
        Parameters that are not plain values (``callbacks``, a
        ``RandomState`` as ``random_state``...) are not saved; the loaded
        estimator has their defaults.

    See Also
    --------
    load : Load the estimator back.
    export_onnx : Export the network for serving without Python.

    Notes
    -----
    The optimiser's state is not saved: use ``checkpoint_dir`` to resume
    training exactly.
    """
    _require_safetensors()
    from safetensors.torch import save_file

    classes = _estimator_classes()
    name = type(estimator).__name__
    if classes.get(name) is not type(estimator):
        raise TypeError(
            f"skcnn.save saves {sorted(classes)}; got a {name}."
        )
    check_is_fitted(estimator)
    net = estimator.net_

    params, dropped = {}, []
    for key, value in estimator.get_params().items():
        try:
            params[key] = _encode(value)
        except _Unencodable:
            dropped.append(key)
    if dropped:
        warnings.warn(
            f"skcnn.save does not store the parameters {dropped} (not plain "
            f"values); the loaded estimator has their defaults.",
            UserWarning, stacklevel=2,
        )
    attributes = {}
    for key, value in vars(estimator).items():
        if key in estimator.get_params() or key == "net_" or key.startswith("__"):
            continue
        try:
            attributes[key] = _encode(value)
        except _Unencodable as exc:
            raise TypeError(
                f"skcnn.save cannot store the fitted attribute {key!r} ({exc})."
            ) from None

    tensors = {f"module.{k}": v.detach().to("cpu", copy=True).contiguous()
               for k, v in net.module_.state_dict().items()}
    criterion_kwargs = {}
    for key, value in net.get_params_for("criterion").items():
        if isinstance(value, torch.Tensor):
            tensors[f"criterion.{key}"] = value.detach().to("cpu", copy=True).contiguous()
        else:
            criterion_kwargs[key] = _encode(value)
    from . import __version__

    document = {
        "format": _FORMAT,
        "version": _VERSION,
        "skcnn_version": __version__,
        "estimator": name,
        "architecture": _architecture_info(estimator),
        "params": params,
        "attributes": attributes,
        "criterion": {"class": _encode(net.criterion), "kwargs": criterion_kwargs},
        "history": json.dumps(list(net.history), default=_history_default),
    }
    save_file(tensors, os.fspath(path), metadata={_META_KEY: json.dumps(document)})


def _history_default(value):
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    return None


def _read(path):
    _require_safetensors()
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise ValueError(
            f"{path!r} is not a safetensors file written by skcnn.save ({exc})."
        ) from exc
    try:
        document = json.loads(metadata[_META_KEY])
    except (KeyError, ValueError):
        raise ValueError(
            f"{path!r} is a safetensors file without skcnn's metadata; "
            f"skcnn.load reads the files skcnn.save writes."
        ) from None
    if document.get("format") != _FORMAT or document.get("version") != _VERSION:
        raise ValueError(
            f"{path!r} holds format {document.get('format')!r} version "
            f"{document.get('version')!r}; this skcnn reads {_FORMAT!r} version "
            f"{_VERSION}."
        )
    return document, tensors


def load(path, architectures=None, *, device=None):
    """Load an estimator saved by :func:`save`; no code from the file runs.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    architectures : list of classes, dict or None, default=None
        The classes of your own code that the file names: an
        ``nn.Module`` subclass passed as ``architecture``, an optimiser or
        loss class of your own. Matched by class name. Built-in
        architectures, torchvision/timm backbones and torch's classes need
        nothing. A file that names any other class is refused.
    device : str or None, default=None
        Where the network goes. ``None``: the estimator's ``device``
        parameter when that device exists here, else the CPU (a model
        trained on CUDA loads on a machine without a GPU). The ``device``
        parameter of the loaded estimator is set accordingly.

    Returns
    -------
    estimator : fitted estimator
        Predicts as the saved one did.

    Raises
    ------
    ValueError
        The file was not written by :func:`save`, or names a class that is
        neither torch's, skcnn's nor in ``architectures``.
    FileNotFoundError
        No file at ``path``.
    """
    document, tensors = _read(path)
    classes = _estimator_classes()
    cls = classes.get(document.get("estimator"))
    if cls is None:
        raise ValueError(
            f"{os.fspath(path)!r} holds a {document.get('estimator')!r}; skcnn.load "
            f"loads {sorted(classes)}."
        )
    allowed = _allowed(architectures)
    decode = _Decoder(allowed)
    info = document["architecture"]
    _check_architecture(info, allowed)
    params = decode(document["params"])
    if info["kind"] == "registered" and info["name"] in allowed and \
            info["name"] not in models.list_models(info["ndim"]):
        models.register_model(info["name"], ndim=info["ndim"])(allowed[info["name"]])
    estimator = cls(**params)
    for key, value in decode(document["attributes"]).items():
        setattr(estimator, key, value)

    saved_device = estimator.device
    if device is None:
        try:
            device = resolve_device(saved_device)
        except ValueError:  # a CUDA device this machine lacks
            device = "cpu"
        if not _device_exists(device):
            device = "cpu"
    else:
        device = resolve_device(device)
    if saved_device != "auto" or device != resolve_device("auto"):
        estimator.device = device

    criterion = decode(document["criterion"]["class"])
    criterion_kwargs = decode(document["criterion"]["kwargs"])
    criterion_kwargs.update({k[len("criterion."):]: v for k, v in tensors.items()
                             if k.startswith("criterion.")})
    state = {k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")}
    net = _rebuild_net(estimator, criterion, criterion_kwargs, device)
    missing, unexpected = net.module_.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"The weights in {os.fspath(path)!r} do not fit the network rebuilt "
            f"from its parameters (missing {sorted(missing)[:5]}, unexpected "
            f"{sorted(unexpected)[:5]}); was architecture "
            f"{info['name']!r} changed since the file was saved?"
        )
    from skorch.history import History

    net.history = History(json.loads(document["history"]))
    estimator.net_ = net
    return estimator


def _device_exists(device):
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    if dev.type == "mps":
        return torch.backends.mps.is_available()
    return True


def _check_architecture(info, allowed):
    kind, name, ndim = info["kind"], info["name"], info["ndim"]
    if kind == "class":
        _Decoder(allowed).resolve(name)
    elif kind in ("builtin", "registered") and name not in models.list_models(ndim) \
            and name not in allowed:
        raise ValueError(
            f"The file was saved with architecture={name!r}, a builder registered "
            f"with skcnn.register_model that is not registered now. skcnn.load "
            f"never imports code named in a file: register it first (run the "
            f"code that defines it), or pass architectures={{{name!r}: builder}}."
        )


def _rebuild_net(estimator, criterion, criterion_kwargs, device):
    """The fitted estimator's skorch net, built as ``fit`` built it, untrained."""
    weights = estimator.weights
    estimator.weights = None  # read no file, download nothing: the weights follow
    try:
        with torch_seed(0):  # leaves the caller's random state alone
            net = estimator._build_net(
                estimator._n_outputs, 2, criterion, criterion_kwargs,
                torch.Generator(), device)
            net.compile = False  # loaded uncompiled, as a pickled estimator is
            net.initialize()
    finally:
        estimator.weights = weights
    net.batch_transform = estimator._batch_transform()
    return net


# ---------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------

class _Exported(torch.nn.Module):
    """The network with the estimator's input scaling and output decoding."""

    def __init__(self, module, *, normalize=None, softmax=False, sigmoid=False,
                 y_mean=None, y_scale=None):
        super().__init__()
        self.module = module
        self.normalize = normalize
        self.softmax = softmax
        self.sigmoid = sigmoid
        if y_mean is not None:
            self.register_buffer("y_mean", torch.as_tensor(y_mean, dtype=torch.float32))
            self.register_buffer("y_scale", torch.as_tensor(y_scale, dtype=torch.float32))
        else:
            self.y_mean = None

    def forward(self, x):
        # 'zscore+scale': the module (KeepScale) scales the series itself.
        if self.normalize is not None and self.normalize != "zscore+scale":
            x = _normalize_series(x, self.normalize)
        out = self.module(x).float()
        out = out.reshape(out.shape[0], -1)
        if self.softmax:
            return torch.softmax(out, dim=1)
        if self.sigmoid:  # multi-label: one probability per label
            return torch.sigmoid(out)
        if self.y_mean is not None:
            return out * self.y_scale + self.y_mean
        return out


def _normalize_series(x, method):
    """skcnn._sequences.normalize_series for equal-length series, in torch."""
    if method == "zscore":
        shift, scale = masked_moments(x, None)
    else:
        shift = x.amin(dim=-1, keepdim=True)
        scale = x.amax(dim=-1, keepdim=True) - shift
    constant = x.amax(dim=-1, keepdim=True) == x.amin(dim=-1, keepdim=True)
    scale = torch.where(constant, torch.ones_like(scale), scale)
    return torch.where(constant, torch.zeros_like(x), (x - shift) / scale)


def export_onnx(estimator, path, *, opset_version=17):
    """Export a fitted estimator's network, with its input and output scaling, to ONNX.

    The ONNX model takes one input, ``"input"``: float32 samples of shape
    ``(n, *input_shape_)`` (``input_shape_`` is ``(channels, height,
    width)`` or ``(channels, length)``), any ``n``, with values as the
    network sees them: integer images already scaled to [0, 1] (uint8 / 255).
    It applies the per-series ``normalize`` of the 1-D estimators itself.
    The image estimators' reading of ``X`` is not part of it: channels-last
    images must be transposed to channels-first, images resized and
    cropped as ``preprocessing_`` says, and ``tta`` is not applied.
    Its output is ``"probabilities"`` (classifiers: the softmax, columns in
    the order of ``classes_``; multi-label classifiers: the sigmoid of each
    label) or ``"predictions"`` (regressors: in the units
    of ``y``, shape ``(n, n_outputs)``).

    Parameters
    ----------
    estimator : fitted skcnn estimator
    path : str or path-like
        The ``.onnx`` file to write.
    opset_version : int, default=17
        ONNX operator set.

    Returns
    -------
    path : str
        The file written.

    Raises
    ------
    ImportError
        The ``onnx`` package is missing (``pip install 'skcnn[onnx]'``).
    """
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise ImportError(
            "skcnn.export_onnx needs the onnx package: pip install 'skcnn[onnx]'"
        ) from exc
    classes = _estimator_classes()
    if classes.get(type(estimator).__name__) is not type(estimator):
        raise TypeError(f"skcnn.export_onnx exports {sorted(classes)}; got "
                        f"a {type(estimator).__name__}.")
    check_is_fitted(estimator)
    module = copy.deepcopy(estimator.net_.module_).to("cpu").float().eval()
    is_classifier = estimator._is_classifier()
    multilabel = is_classifier and getattr(estimator, "_multilabel", False)
    wrapper = _Exported(
        module,
        normalize=getattr(estimator, "normalize_", getattr(estimator, "normalize", None)),
        softmax=is_classifier and not multilabel,
        sigmoid=multilabel,
        y_mean=None if is_classifier else estimator.y_mean_,
        y_scale=None if is_classifier else estimator.y_scale_,
    ).eval()
    example = torch.zeros((2, *estimator.input_shape_), dtype=torch.float32)
    output = "probabilities" if is_classifier else "predictions"
    path = os.fspath(path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        # The TorchScript exporter (dynamo=False) needs onnx only, not onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper, (example,), path, input_names=["input"], output_names=[output],
            dynamic_axes={"input": {0: "n"}, output: {0: "n"}},
            opset_version=opset_version, dynamo=False,
        )
    return path
