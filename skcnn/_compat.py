"""scikit-learn's private helpers, imported in one place.

skcnn uses a few names that scikit-learn does not make public (parameter
constraints, the ``_fit_context`` decorator, the feature-name check of
``get_feature_names_out``, the validation of ``sample_weight``). Every module imports them from here, so that a
scikit-learn release that moves one breaks this file only, as
imbalanced-learn's ``utils/_sklearn_compat.py`` does. The versions tested
are stated in ``pyproject.toml``.
"""

import sklearn
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.fixes import parse_version
from sklearn.utils.validation import _check_feature_names_in, _check_sample_weight

__all__ = ["Interval", "SKLEARN_VERSION", "StrOptions", "_check_feature_names_in",
           "_check_sample_weight", "_fit_context", "validate_params"]

SKLEARN_VERSION = parse_version(parse_version(sklearn.__version__).base_version)

if SKLEARN_VERSION < parse_version("1.6"):  # validate_data and the tags API
    raise ImportError(
        f"skcnn needs scikit-learn 1.6 or later; scikit-learn "
        f"{sklearn.__version__} is installed. Upgrade it with "
        f"`pip install -U scikit-learn`."
    )
