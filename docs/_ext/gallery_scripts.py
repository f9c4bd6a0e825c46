"""Run each gallery example as ``python examples/NAME.py`` would: no arguments, its globals set.

sphinx-gallery executes an example in a fresh ``__main__`` namespace whose ``__doc__``
is empty and which has no ``__file__``. The examples are command-line scripts that
build their ``--help`` from the module docstring and save their figures next to
themselves, so this hook, given to sphinx-gallery as its ``reset_argv`` callable (which
it calls once per example, after making the namespace and before running the code),
gives the namespace the values a plain run would, and the script no arguments.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any


def script_globals(path: Path) -> dict[str, Any]:
    """Return the ``__doc__`` and ``__file__`` of the script at `path` run as a program."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {"__doc__": ast.get_docstring(tree, clean=False), "__file__": str(path)}


def run_as_script(gallery_conf: dict[str, Any], script_vars: dict[str, Any]) -> list[str]:
    """Set the example's ``__doc__`` and ``__file__``; return its arguments: none."""
    script_vars["example_globals"].update(script_globals(Path(script_vars["src_file"])))
    return []
