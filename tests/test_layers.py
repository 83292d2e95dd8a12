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
ANALYSIS = {"metrics", "latent", "report"}  # one layer: they may use each other
ALLOWED.update({name: BELOW_ANALYSIS | ANALYSIS for name in ANALYSIS})
# models out (bioimage.io packages): above inference and the analysis layer
# (not training: a package is made from a trained model, never from the training code)
ALLOWED["export"] = (BELOW_ANALYSIS - {"training"}) | ANALYSIS | {"synthetic"}
# the top layer: the Python API, the CLI (which takes the API's by-name choices)
ALLOWED["cli"] = BELOW_ANALYSIS | ANALYSIS | {"synthetic", "api", "export"}


def _imports(path: Path, *, typing: bool = True) -> set[str]:
    """The modules ``path`` imports; ``typing=False`` leaves out those under ``if
    TYPE_CHECKING:`` (annotations only, never imported when the code runs)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    if not typing:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
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


def test_no_two_modules_share_a_name():
    """A name says which file: only each layer's config.py (and __init__.py) repeat."""
    seen: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        seen.setdefault(path.name, []).append(str(path.relative_to(PACKAGE)))
    repeated = {
        n: p for n, p in seen.items() if len(p) > 1 and n not in ("config.py", "__init__.py")
    }
    assert not repeated, repeated


def _module_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (at the top or inside functions), within microvae;
    importing a package counts as importing the modules its __init__ imports."""
    files = {
        ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p
        for p in PACKAGE.rglob("*.py")
    }
    raw = {name: _imports(path, typing=False) for name, path in files.items()}

    def expand(mod: str, seen: frozenset = frozenset()) -> set[str]:
        if mod in files and not mod.endswith("__init__"):
            return {mod}
        init = f"{mod}.__init__"
        if init not in files or init in seen:
            return set()
        out: set[str] = set()
        for m in raw[init]:
            out |= expand(m, seen | {init})
        return out

    return {
        name: {t for m in mods for t in expand(m)} - {name}
        for name, mods in raw.items()
        if not name.endswith("__init__")
    }


def test_no_import_cycles_between_modules():
    """Not even through an import inside a function: a cycle means two modules that cannot
    be understood apart."""
    graph = _module_graph()
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


# Public functions whose signature and documented arguments alone take most of 60 lines; the
# body of each is a handful of named steps (docs/development.md says why they stay).
LONG_BY_DESIGN = {"microvae/batch/stacks.py:process_stacks"}


def test_functions_read_as_named_steps():
    """No function in the package or the plugin over 60 lines (signature and docstring
    included) but those listed; the list shrinks, it does not grow."""
    root = PACKAGE.parent
    files = [*PACKAGE.rglob("*.py"), *(root / "napari_plugin" / "src").rglob("*.py")]
    long = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.end_lineno - node.lineno + 1 > 60:
                    long.add(f"{path.relative_to(root).as_posix()}:{node.name}")
    assert long <= LONG_BY_DESIGN, f"split into named steps: {sorted(long - LONG_BY_DESIGN)}"
    assert len(LONG_BY_DESIGN) <= 3


def test_subpackages_are_used_through_their_faces():
    """Each subpackage's ``__init__`` is its public face: another subpackage (or the API, the
    command line) imports ``microvae.data``'s names from ``microvae.data``, never from
    ``microvae.data.prepare``; the modules behind a face are its own business."""
    reached = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        own = rel.parts[0] if len(rel.parts) > 1 else None
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "microvae" and len(parts) > 2 and parts[1] != own:
                reached.append(f"{rel.as_posix()} imports {module}")
    assert not reached, reached


def test_every_face_exports_what_it_imports_for_others():
    """A face's ``__all__`` names exist: ``from microvae.X import *`` works for every X."""
    import importlib

    for init in sorted(PACKAGE.glob("*/__init__.py")):
        name = f"microvae.{init.parent.name}"
        if name in ("microvae.cli", "microvae.configs"):
            continue
        face = importlib.import_module(name)
        missing = [n for n in face.__all__ if not hasattr(face, n)]
        assert not missing, f"{name}.__all__ names what it lacks: {missing}"


def test_a_lazy_face_name_is_never_a_module_name():
    """``from microvae.training import fit`` must give the function, not a module of that
    name: once imported, a submodule is an attribute of its package, and a lazy face's
    ``__getattr__`` is never asked for it. (An eager face imports the name over it.)"""
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        modules = {p.stem for p in init.parent.glob("*.py")}
        tree = ast.parse(init.read_text())
        if not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
            continue
        names = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "__all__" for t in node.targets
            ):
                names = {e.value for e in node.value.elts}
        clash = names & modules
        assert not clash, f"{init.parent.name}: face names that are modules too: {clash}"
