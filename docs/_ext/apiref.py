"""The API reference, generated from ``__all__`` so that every public name gets a page.

The package's public names are those in ``crossentropy.__all__``; a public submodule
(one whose name does not start with an underscore, found on disk or listed in
``__all__``) is documented with the names in its own ``__all__``. Nothing here is
typed by hand: a name added to ``__all__`` gets a page at the next build, in the first
section whose rule matches it, or under "Other" otherwise.

:func:`api_pages` returns the reStructuredText of every page; it needs only the package,
so that the test suite can check the list without Sphinx. As a Sphinx extension, the
module writes those pages into ``api/`` of the source directory when the configuration
is read, before ``sphinx.ext.autosummary`` generates one stub page per name.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "crossentropy"
API_DIR = "api"
STUB_DIR = "generated"


@dataclass
class Section:
    """A titled group of names of one module, each of which gets its own page."""

    title: str
    names: list[str] = field(default_factory=list)


def _is_warning(obj: object) -> bool:
    return inspect.isclass(obj) and issubclass(obj, Warning)


# (title, rule) in order: a name goes into the first section whose rule accepts it.
SECTIONS: list[tuple[str, Callable[[str, object], bool]]] = [
    ("Cross-entropy losses", lambda name, obj: "cross_entropy" in name),
    ("Focal losses", lambda name, obj: "focal" in name),
    ("scikit-learn's log loss", lambda name, obj: name == "log_loss"),
    ("Threads", lambda name, obj: "num_threads" in name),
    ("Warnings", lambda name, obj: _is_warning(obj)),
]
OTHER = "Other"


def public_names(module: ModuleType) -> list[str]:
    """Return the names of `module`'s ``__all__`` that are not modules, in its order."""
    return [name for name in module.__all__ if not inspect.ismodule(getattr(module, name))]


def public_submodules(module: ModuleType) -> list[ModuleType]:
    """Return `module`'s public submodules, recursively: on disk or listed in ``__all__``."""
    found: dict[str, ModuleType] = {}
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            found[obj.__name__] = obj
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if not info.name.startswith("_"):
            full = f"{module.__name__}.{info.name}"
            found[full] = importlib.import_module(full)
    result = []
    for full in sorted(found):
        result.append(found[full])
        result.extend(public_submodules(found[full]))
    return result


def sections(module: ModuleType) -> list[Section]:
    """Group the non-module names of `module`'s ``__all__`` into sections, none empty."""
    groups = [Section(title) for title, _ in SECTIONS] + [Section(OTHER)]
    for name in public_names(module):
        obj = getattr(module, name)
        index = next((i for i, (_, rule) in enumerate(SECTIONS) if rule(name, obj)), len(SECTIONS))
        groups[index].names.append(name)
    return [group for group in groups if group.names]


def documented_names(package: str = PACKAGE) -> list[str]:
    """Return the qualified name of every object that :func:`api_pages` gives a page."""
    root = importlib.import_module(package)
    names = []
    for module in [root, *public_submodules(root)]:
        if module is not root:
            names.append(module.__name__)
        names.extend(f"{module.__name__}.{name}" for name in public_names(module))
    return names


def _heading(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def _autosummary(module: ModuleType, section: Section, *, toctree: str) -> list[str]:
    lines = _heading(section.title, "-")
    lines += [".. autosummary::", f"   :toctree: {toctree}", "   :nosignatures:", ""]
    lines += [f"   {name}" for name in section.names]
    return [*lines, ""]


def _module_page(module: ModuleType) -> str:
    """Return the page of a public submodule: its docstring, then a stub page per name."""
    lines = _heading(f"``{module.__name__}``", "=")
    lines += [f".. automodule:: {module.__name__}", "   :no-members:", ""]
    lines += [f".. currentmodule:: {module.__name__}", ""]
    for section in sections(module):
        lines += _autosummary(module, section, toctree=STUB_DIR)
    return "\n".join(lines)


def api_pages(package: str = PACKAGE) -> dict[str, str]:
    """Return ``{file name: reStructuredText}`` of the API reference's pages.

    ``index.rst`` lists the package's names by section, one ``autosummary`` table each
    (which makes a stub page per name), and links one page per public submodule.
    """
    root = importlib.import_module(package)
    lines = [
        ".. This page is generated by docs/_ext/apiref.py from the package's __all__.",
        "",
        *_heading("API reference", "="),
        f".. automodule:: {package}",
        "   :no-members:",
        "",
        f".. currentmodule:: {package}",
        "",
    ]
    for section in sections(root):
        lines += _autosummary(root, section, toctree=STUB_DIR)
    pages = {}
    submodules = public_submodules(root)
    if submodules:
        lines += [*_heading("Submodules", "-"), ".. toctree::", "   :maxdepth: 1", ""]
        for module in submodules:
            lines.append(f"   {module.__name__}")
            pages[f"{module.__name__}.rst"] = _module_page(module)
        lines.append("")
    return {"index.rst": "\n".join(lines), **pages}


def comparison_table(path: Path) -> str:
    """Return a ``list-table`` of the times in ``benchmarks/compare.json`` at `path`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    threads = sorted({count for case in data["cases"] for count in case["results"]}, key=int)
    header = ["case", "peer"]
    for count in threads:
        unit = "thread" if count == "1" else "threads"
        header += [f"{count} {unit}: ours (ms)", "peer (ms)", "ratio"]
    rows = [header]
    for case in data["cases"]:
        row = [case["name"], f"``{case['peer']}``"]
        for count in threads:
            result = case["results"].get(count)
            row += (
                ["", "", ""]
                if result is None
                else [
                    f"{result['ours_ms']:.1f}",
                    f"{result['theirs_ms']:.1f}",
                    f"{result['ratio']:.3f}",
                ]
            )
        rows.append(row)
    lines = [
        f".. list-table:: {data['title']}; best of {data['repeats']} interleaved repeats",
        "   :header-rows: 1",
        "",
    ]
    for row in rows:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def write_pages(srcdir: Path) -> None:
    """Write the API pages into ``srcdir/api``, and the table of ``compare.json``.

    Stub pages of names that are no longer public are removed.
    """
    for name, text in api_pages().items():
        _write_if_changed(srcdir / API_DIR / name, text)
    current = set(documented_names())
    for stub in (srcdir / API_DIR / STUB_DIR).glob("*.rst"):
        if stub.stem not in current:
            stub.unlink()
    compare = srcdir.parent / "benchmarks" / "compare.json"
    _write_if_changed(srcdir / "_generated" / "compare_table.rst", comparison_table(compare))


def setup(app: Any) -> dict[str, Any]:
    """Write the generated pages as soon as the configuration is read."""
    app.connect("config-inited", lambda app, config: write_pages(Path(app.srcdir)))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
