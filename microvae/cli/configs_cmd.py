"""``microvae configs``: the named configs (presets shipped with microvae), listed or copied."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

__all__ = ["add_parser", "run", "summary_of"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "configs",
        help="list the named configs (presets) that train takes by name, or copy one",
        description="List the configs microvae ships (and those in ./configs/): their names, "
        "what each is for, and where it lies. `microvae train NAME --data ...` takes a name; "
        "--copy NAME writes the YAML to edit (to --to, default ./NAME.yaml).",
    )
    p.add_argument("--copy", metavar="NAME", default=None, help="copy this config")
    p.add_argument("--to", type=Path, default=None, metavar="PATH", help="where to copy it")
    p.set_defaults(run=run)


def summary_of(path: Path) -> str:
    """What a config is for: the first sentence of its opening comment."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    text = " ".join(lines)
    text = text.split(": ", 1)[1] if text.startswith(f"{path.name}:") else text
    first = text.split(". ")[0].rstrip(".")
    return (first[:1].upper() + first[1:] + ".") if first else ""


def run(args: argparse.Namespace) -> int:
    from ..config import find_config, shipped_configs
    from ..errors import MicrovaeError

    if args.copy is not None:
        source = find_config(args.copy)
        dest = args.to or Path(f"{args.copy}.yaml")
        if dest.is_dir():
            dest = dest / source.name
        if dest.exists():
            raise MicrovaeError(f"{dest}: already exists; choose another --to, or remove it")
        shutil.copyfile(source, dest)
        print(f"{dest}: a copy of {args.copy}; edit it, then: microvae train {dest} --data ...")
        return 0
    found = shipped_configs()
    width = max(len(n) for n in found)
    for name, path in found.items():
        print(f"{name:<{width}}  {summary_of(path)}")
    print(f"\n(from {', '.join(sorted({str(p.parent) for p in found.values()}))})")
    return 0
