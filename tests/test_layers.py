"""Imports point down the layers of DESIGN.md; the core never imports napari or Qt."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "microvae"

# what each layer may import from microvae (besides itself, microvae.errors and the
# microvae.devices and microvae.extras utilities), following DESIGN.md's diagram
ALLOWED = {
    "io": set(),
    "synthetic": {"io"},  # writes its sets as TIFF; io knows nothing of it
    "data": {"io"},
    "model": set(),
    "objective": {"model"},
    # the run config and model file, below both training and inference
    "config": {"io", "data", "model", "objective"},
    "training": {"io", "data", "model", "objective", "config"},
    # inference reads model files, never training
    "inference": {"io", "data", "model", "objective", "config"},
    "batch": {"io", "data", "model", "objective", "config", "inference"},
}
BELOW_ANALYSIS = {"io", "data", "model", "objective", "config", "training", "inference", "batch"}
ANALYSIS = {"metrics", "diagnostics", "latent", "report"}  # one layer: they may use each other
ALLOWED.update({name: BELOW_ANALYSIS | ANALYSIS for name in ANALYSIS})
# models out (bioimage.io packages): above inference and the analysis layer
ALLOWED["export"] = BELOW_ANALYSIS | ANALYSIS | {"synthetic"}
# the top layer: the Python API, the CLI (which takes the API's by-name choices)
ALLOWED["cli"] = BELOW_ANALYSIS | ANALYSIS | {"synthetic", "api", "export"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.add(node.module)
            elif node.level >= 1:
                base = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level])
                found.add(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_down(layer):
    single = PACKAGE / f"{layer}.py"
    paths = [single] if single.is_file() else list((PACKAGE / layer).rglob("*.py"))
    assert paths, f"layer {layer} has no module"
    for path in paths:
        for mod in _imports(path):
            top = mod.split(".")[0]
            assert top not in {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6"}, path
            if top != "microvae":
                continue
            parts = mod.split(".")
            sub = parts[1] if len(parts) > 1 else ""
            if sub in ("", layer, "errors", "devices", "extras", "__init__"):
                continue
            assert sub in ALLOWED[layer], f"{path.name} ({layer}) imports {mod}"


def test_every_subpackage_has_a_layer():
    """A new subpackage must be placed in the layers before it can be imported."""
    found = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    found |= {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")}
    assert found - set(ALLOWED) <= {"errors", "devices", "extras", "api"}, found - set(ALLOWED)
