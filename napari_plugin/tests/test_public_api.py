"""The plugin reaches microvae through its public API only (no underscore names or modules)."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src" / "napari_microvae"


def test_plugin_imports_no_private_microvae_names():
    found = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] != "microvae":
                    continue
                found.append(node.module)
                assert not any(p.startswith("_") for p in node.module.split(".")), (
                    path.name,
                    node.module,
                )
                for alias in node.names:
                    assert not alias.name.startswith("_"), (path.name, alias.name)
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                base = node.value
                if isinstance(base, ast.Name) and base.id in ("microvae", "model", "latent"):
                    raise AssertionError(f"{path.name}: {base.id}.{node.attr}")
    assert found  # it does use microvae
