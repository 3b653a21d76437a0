"""sphinx-gallery hooks, importable by name so that Sphinx can cache the config."""

import tempfile
from pathlib import Path


def example_png_path(gallery_conf, script_vars):
    """The one argument of each example: where it writes its PNG.

    A temporary folder keeps the build's PNGs out of the source tree;
    sphinx-gallery scrapes the figures for the pages itself.
    """
    out = Path(tempfile.gettempdir()) / "skcnn-docs"
    out.mkdir(exist_ok=True)
    return [str(out / (Path(script_vars["src_file"]).stem + ".png"))]
