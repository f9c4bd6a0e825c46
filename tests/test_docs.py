"""The documentation site, checked without Sphinx.

Every public name has an API page: the pages that ``docs/_ext/apiref.py`` writes are
read back here and compared with ``crossentropy.__all__`` and the public submodules,
found independently. The gallery runs every example but the few that ``docs/conf.py``
names, each example has the title the gallery needs, and the code on the hand-written
pages runs as written.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import importlib.util
import inspect
import itertools
import json
import pkgutil
import re
import runpy
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import crossentropy as ce

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
if not (DOCS / "conf.py").is_file():  # pragma: no cover - an sdist ships no docs/
    pytest.skip("docs/ is not part of this copy of the tests", allow_module_level=True)

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PAGES = sorted(
    page
    for page in [*DOCS.glob("*.rst"), *(DOCS / "user_guide").glob("*.rst")]
    if page.name != "sg_execution_times.rst"  # written by the build
)


def load(name: str) -> ModuleType:
    """Import ``docs/_ext/NAME.py`` as a plain module (it does not need Sphinx)."""
    qualified = f"_docs_ext_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, DOCS / "_ext" / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module  # for its dataclasses
        spec.loader.exec_module(module)
    return sys.modules[qualified]


@pytest.fixture(scope="module")
def apiref() -> ModuleType:
    return load("apiref")


def expected_pages(package: ModuleType) -> set[str]:
    """Every name of ``__all__``, every public submodule and every name of its ``__all__``."""
    names = set()
    modules = [package]
    while modules:
        module = modules.pop()
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                modules.append(obj)
            else:
                names.add(f"{module.__name__}.{name}")
        for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
            if not info.name.startswith("_"):
                modules.append(importlib.import_module(f"{module.__name__}.{info.name}"))
        if module is not package:
            names.add(module.__name__)
    return names


def autosummary_entries(pages: dict[str, str]) -> list[tuple[str, str]]:
    """``(section title, qualified name)`` of the entries of the ``autosummary`` tables.

    Each entry makes a stub page; a submodule's page is the file named after it, linked
    from the index's toctree (its section is its title).
    """
    entries = []
    for file_name, text in pages.items():
        if file_name != "index.rst":
            entries.append(("Submodules", file_name.removesuffix(".rst")))
            assert f"   {file_name.removesuffix('.rst')}\n" in pages["index.rst"]
        module = title = ""
        lines = text.splitlines()
        for number, line in enumerate(lines):
            if line.startswith(".. currentmodule::"):
                module = line.split("::")[1].strip()
            if number + 1 < len(lines) and re.fullmatch("-+", lines[number + 1]):
                title = line
            if line.strip() == ".. autosummary::":
                block = list(itertools.takewhile(str.strip, lines[number + 1 :]))
                assert any(option.strip().startswith(":toctree:") for option in block)
                after = lines[number + 1 + len(block) + 1 :]
                names = itertools.takewhile(str.strip, after)
                entries += [(title, f"{module}.{name.strip()}") for name in names]
    return entries


def test_every_public_name_has_an_api_page(apiref):
    pages = apiref.api_pages()
    entries = [name for _, name in autosummary_entries(pages)]
    assert len(entries) == len(set(entries)), "a name is listed twice"
    assert set(entries) == expected_pages(ce)
    assert sorted(entries) == sorted(apiref.documented_names())
    assert {f"crossentropy.{name}" for name in ce.__all__} <= set(entries)


def test_a_new_public_name_and_a_public_submodule_get_pages(apiref, tmp_path, monkeypatch):
    package = tmp_path / "fakeloss"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            '''
            """A package like crossentropy."""
            from . import objectives
            from ._impl import FitWarning, linear_cross_entropy, new_thing, sparse_focal_loss
            __all__ = [
                "FitWarning", "linear_cross_entropy", "new_thing", "objectives",
                "sparse_focal_loss",
            ]
            '''
        )
    )
    (package / "_impl.py").write_text(
        textwrap.dedent(
            '''
            """Private."""
            class FitWarning(UserWarning):
                """A warning."""
            def linear_cross_entropy():
                """A loss."""
            def new_thing():
                """Something else."""
            def sparse_focal_loss():
                """A focal loss."""
            '''
        )
    )
    (package / "objectives.py").write_text(
        '"""Objectives."""\n__all__ = ["lightgbm", "xgboost"]\n'
        'def lightgbm():\n    """L."""\ndef xgboost():\n    """X."""\n'
    )
    (package / "tools").mkdir()
    (package / "tools" / "__init__.py").write_text(
        '"""Tools, not listed in __all__."""\n__all__ = ["helper"]\ndef helper():\n    """H."""\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pages = apiref.api_pages("fakeloss")
    assert set(pages) == {"index.rst", "fakeloss.objectives.rst", "fakeloss.tools.rst"}
    assert set(autosummary_entries(pages)) == {
        ("Cross-entropy losses", "fakeloss.linear_cross_entropy"),
        ("Focal losses", "fakeloss.sparse_focal_loss"),
        ("Warnings", "fakeloss.FitWarning"),
        ("Other", "fakeloss.new_thing"),
        ("Submodules", "fakeloss.objectives"),
        ("Other", "fakeloss.objectives.lightgbm"),
        ("Other", "fakeloss.objectives.xgboost"),
        ("Submodules", "fakeloss.tools"),
        ("Other", "fakeloss.tools.helper"),
    }
    assert ".. automodule:: fakeloss.objectives" in pages["fakeloss.objectives.rst"]


def test_written_pages_are_the_generated_ones(apiref, tmp_path):
    (tmp_path / "docs" / "api" / "generated").mkdir(parents=True)
    stale = tmp_path / "docs" / "api" / "generated" / "crossentropy.removed_name.rst"
    stale.write_text("removed\n")
    (tmp_path / "benchmarks").mkdir()
    compare = (ROOT / "benchmarks" / "compare.json").read_text()
    (tmp_path / "benchmarks" / "compare.json").write_text(compare)
    apiref.write_pages(tmp_path / "docs")
    for name, text in apiref.api_pages().items():
        assert (tmp_path / "docs" / "api" / name).read_text() == text
    assert not stale.exists()
    assert (tmp_path / "docs" / "_generated" / "compare_table.rst").is_file()


def test_comparison_table_has_every_case_and_thread_count(apiref):
    path = ROOT / "benchmarks" / "compare.json"
    data = json.loads(path.read_text())
    table = apiref.comparison_table(path)
    for case in data["cases"]:
        assert f"   * - {case['name']}\n" in table
        for result in case["results"].values():
            assert f"     - {result['ratio']:.3f}\n" in table
    threads = {count for case in data["cases"] for count in case["results"]}
    header_cells = 2 + 3 * len(threads)
    assert table.count("\n     - ") == (len(data["cases"]) + 1) * (header_cells - 1)


def gallery_conf(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setattr(sys, "path", list(sys.path))  # conf.py prepends to it
    return runpy.run_path(str(DOCS / "conf.py"))


def test_gallery_runs_every_example_but_the_listed_ones(monkeypatch):
    conf = gallery_conf(monkeypatch)
    not_executed = conf["NOT_EXECUTED"]
    assert isinstance(not_executed, dict)
    assert 0 < len(not_executed) <= 3
    pattern = conf["sphinx_gallery_conf"]["filename_pattern"]  # type: ignore[index]
    assert {path.name for path in EXAMPLES} >= set(not_executed)
    for path in EXAMPLES:
        executed = re.search(pattern, str(path)) is not None
        assert executed == (path.name not in not_executed), path.name
    assert "apiref" in conf["extensions"]  # type: ignore[operator]


def test_every_example_has_a_gallery_title():
    """The docstring's first line is underlined, which makes it the page's title."""
    assert EXAMPLES
    for path in EXAMPLES:
        docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
        assert docstring, f"{path.name} has no module docstring"
        title, underline, *_ = docstring.splitlines()
        assert title.strip()
        assert re.fullmatch("=+", underline), f"{path.name}: underline the title with '='"
        assert len(underline) >= len(title), f"{path.name}: the underline is too short"


def test_examples_see_their_docstring_and_file():
    hook = load("gallery_scripts")
    namespace: dict[str, object] = {"__doc__": ""}
    path = ROOT / "examples" / "digits_training.py"
    assert hook.run_as_script({}, {"src_file": str(path), "example_globals": namespace}) == []
    assert namespace["__file__"] == str(path)
    docstring = namespace["__doc__"]
    assert isinstance(docstring, str)
    assert docstring.splitlines()[0].startswith("Train classifiers")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_code_on_the_pages_runs_as_written(page):
    for module in ("dask.array", "xgboost", "lightgbm"):
        if f"import {module.split('.')[0]}" in page.read_text():
            pytest.importorskip(module)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(page.read_text(), {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    failed, attempted = runner.run(test, out=report.append)
    assert failed == 0, "".join(report)
    assert attempted == page.read_text().count("\n>>> ")
