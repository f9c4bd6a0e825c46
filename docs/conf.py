"""Sphinx configuration: ``sphinx-build -W --keep-going -b html docs docs/_build/html``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # document the package of this checkout


import crossentropy  # noqa: E402

project = "crossentropy"
author = "The crossentropy developers"
copyright = "The crossentropy developers"
release = version = crossentropy.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "apiref",  # docs/_ext/apiref.py: the API pages, from crossentropy.__all__
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated", "_templates", "_ext"]
default_role = "py:obj"
add_module_names = False

# -- API pages: autodoc, autosummary, numpydoc ------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # the types are in the docstrings' Parameters sections
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Every check, less those of a style this package does not follow: the summary on the
# line after the quotes (GL01, checked by older numpydoc), capitalised descriptions,
# an extended summary and a See Also section everywhere, unnamed single returns.
numpydoc_validation_checks = {"all", "GL01", "ES01", "SA01", "SA03", "PR08", "RT02", "RT04"}

# -- Gallery -----------------------------------------------------------------------------
# Every example in examples/ is run and its figures are shown, except these, which are
# shown without being run (the reason beside each).
NOT_EXECUTED = {
    "score_out_of_core.py": "writes 4 GiB of logits to disk",
}
for _name in NOT_EXECUTED:
    if not (DOCS.parent / "examples" / _name).is_file():
        _msg = f"NOT_EXECUTED names examples/{_name}, which does not exist"
        raise FileNotFoundError(_msg)
_skipped = "|".join(map(re.escape, NOT_EXECUTED))

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": rf"[\\/](?!(?:{_skipped})$)[^\\/]+\.py$",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("crossentropy",),
    "reference_url": {"crossentropy": None},
    "backreferences_dir": "gen_modules/backreferences",
    "download_all_examples": False,
    "min_reported_time": 1,
    # docs/_ext/gallery_scripts.py: each example gets the __doc__ and __file__ of a plain run
    "reset_argv": "gallery_scripts.run_as_script",
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"crossentropy {release}"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_show_sourcelink = False
