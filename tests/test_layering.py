"""Module layering: the import cycles between fleet, config and _serialize stay broken.

Imports are read from the source (function-level ones included), so a cycle
cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import runnerhub

PACKAGE = Path(runnerhub.__file__).parent


def _imports(module: str) -> set[str]:
    """Every runnerhub module ``module`` imports, at any level of its source."""
    path = PACKAGE / (module.replace(".", "/") + ".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("runnerhub.")
            )
    return found


def test_the_hub_does_not_import_config() -> None:
    """config reads accounts files and builds hubs; the hub never imports config."""
    assert "config" not in _imports("fleet")
    assert "inventory" not in _imports("config")


def test_serialize_imports_neither_hub_nor_inventory() -> None:
    """_serialize depends on the model and errors only; inventory uses it, not the reverse."""
    assert {"fleet", "inventory"}.isdisjoint(_imports("_serialize"))


def test_inventory_does_not_import_the_hub() -> None:
    """The analytics know nothing of the hub that collects the snapshot."""
    assert {"fleet", "config"}.isdisjoint(_imports("inventory"))


def test_sansio_imports_no_io_module() -> None:
    """_sansio is pure: it imports neither the HTTP core nor aiohttp."""
    assert "_http" not in _imports("_sansio")
    source = (PACKAGE / "_sansio.py").read_text(encoding="utf-8")
    assert "import aiohttp" not in source
