"""skcnn: convolutional neural networks as scikit-learn estimators."""

from . import inspection, models
from ._persistence import export_onnx, load, save
from ._summary import summary
from .classifier import CNNClassifier, Conv1DClassifier
from .models import get_model, list_models, register_model
from .pretrained import PretrainedFeatureExtractor
from .regressor import CNNRegressor, Conv1DRegressor

__version__ = "0.1.0"

__all__ = [
    "CNNClassifier",
    "CNNRegressor",
    "Conv1DClassifier",
    "Conv1DRegressor",
    "PretrainedFeatureExtractor",
    "export_onnx",
    "get_model",
    "inspection",
    "list_models",
    "load",
    "models",
    "register_model",
    "save",
    "summary",
    "__version__",
]
