"""Architecture registry: ``list_models``, ``get_model``, ``register_model``.

Importing this package registers every built-in family.
"""

from . import convnet  # noqa: F401  (registers 'convnet')
from . import densenet, inception, lenet, resnet, vgg  # noqa: F401
from . import fcn, inceptiontime, resnet1d  # noqa: F401
from ._layers import ACTIVATIONS
from ._registry import get_model, get_model_builder, list_models, register_model

__all__ = ["ACTIVATIONS", "get_model", "get_model_builder", "list_models",
           "register_model"]
