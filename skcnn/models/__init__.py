"""Architecture registry: ``list_models``, ``get_model``, ``register_model``.

Importing this package registers every built-in family.
"""

from . import (  # noqa: F401  # noqa: F401
           convnet,  # noqa: F401  (registers 'convnet')
           densenet,
           fcn,
           inception,
           inceptiontime,
           lenet,
           resnet,
           resnet1d,
           vgg,
)
from ._ensemble import Ensemble
from ._layers import ACTIVATIONS
from ._registry import get_model, get_model_builder, list_models, register_model

__all__ = ["ACTIVATIONS", "Ensemble", "get_model", "get_model_builder", "list_models",
           "register_model"]
