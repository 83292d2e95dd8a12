"""``microvae info``: what a model file holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "info",
        help="show what a model file holds",
        description="Architecture, likelihood, bit depth, normalisation, "
        "versions and training summary of MODEL (RUN_DIR/model.pt).",
    )
    p.add_argument("model", type=Path, metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..inference import load_model

    d = load_model(args.model).describe()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    s = d["summary"] or {}
    val = s.get("validation") or {}
    collapse = s.get("collapse") or {}
    norm = d["normalisation"]
    lines = [
        d["file"],
        f"  model        {d['skip_mode']}, {d['levels']} levels, {d['parameters']:,} parameters",
        f"  likelihood   {d['likelihood']}",
        f"  data         {d['dtype']}, bit depth {d['bit_depth']}, tiles of {d['tile_size']}",
        f"  input range  {norm['low']:g} .. {norm['high']:g} (percentiles of the training data)",
        f"  generates    {'yes' if d['can_generate'] else 'no (deterministic skips)'}",
        f"  trained      {s.get('steps', '?')} steps in {s.get('seconds', '?')} s on "
        f"{s.get('device', '?')}, {s.get('skipped_updates', 0)} skipped updates",
    ]
    if val:
        bound = "" if d["elbo_is_bound"] else " (not a bound: skips carry x)"
        lines.append(f"  validation   {val['val/bits_per_dim']:.4f} bits/dim{bound}")
    saved = s.get("saved") or {}
    if saved.get("weights") == "best":
        lines.append(
            f"  weights      the best validation, step {saved['step']} (last validated: step "
            f"{saved['last_step']}, {saved['last_val_bits_per_dim']:.4f} bits/dim)"
        )
    if collapse:
        lines.append(
            f"  latent space {collapse['verdict']}, {collapse['active_units']}/"
            f"{collapse['total_units']} active latent channels"
        )
    if s.get("data"):
        lines.append(f"  split        {s['data'].get('split')}")
    cal = d.get("calibration")
    if cal:
        lines.append(
            f"  calibrated   posterior std x {cal['scale']:.3f} (microvae calibrate, "
            f"{cal.get('date', '?')}, {len(cal.get('images', []))} images)"
        )
    v = d["versions"]
    lines.append(f"  versions     microvae {v.get('microvae')}, torch {v.get('torch')}")
    print("\n".join(lines))
    return 0
