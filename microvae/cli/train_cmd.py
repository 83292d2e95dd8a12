"""``microvae train``: train a VAE on TIFFs with a YAML config."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a VAE on TIFF files",
        description="Train with CONFIG (see configs/) on the TIFFs in --data; everything goes "
        "to RUN_DIR: config.yaml, checkpoints, logs (CSV, TensorBoard), preview PNGs, "
        "diagnostics.json and, at the end, model.pt. Ctrl-C saves a checkpoint; --resume "
        "continues from it.",
    )
    p.add_argument(
        "config",
        type=Path,
        nargs="?",
        metavar="CONFIG",
        help="YAML config, or a preset's name (cpu, mito2d, ...: microvae configs lists them); "
        "optional with --resume (the run's own config is used)",
    )
    p.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="PATH",
        help="TIFF files, folders or glob patterns",
    )
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=2000 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from last.ckpt")
    p.add_argument("--overwrite", action="store_true", help="delete RUN_DIR's run and start again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import MicrovaeError
    from ..training import fit

    if args.config is None and not args.resume:
        raise MicrovaeError("train: CONFIG is required (e.g. cpu, or my.yaml) unless --resume")
    if args.resume and args.overwrite:
        raise MicrovaeError("train: --resume and --overwrite exclude each other")
    run_dir, summary = fit(
        args.config,
        args.data,
        args.out,
        overrides=args.overrides,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    val = summary.get("validation", {})
    if summary.get("rank", 0) != 0:  # another DDP process: rank 0 reports (and wrote it)
        return 0
    print(f"model: {run_dir / 'model.pt'} ({summary['steps']} steps, {summary['seconds']} s)")
    if val:
        print(f"validation: {val['val/bits_per_dim']:.4f} bits/dim")
    saved = summary.get("saved") or {}
    if saved.get("weights") == "best" and saved["step"] != saved["last_step"]:
        print(
            f"weights: the best validation, step {saved['step']}; the last step's "
            f"({saved['last_val_bits_per_dim']:.4f} bits/dim) are in checkpoints/last.ckpt"
        )
    if summary.get("collapse"):
        c = summary["collapse"]
        print(
            f"latent space: {c['verdict']}, {c['active_units']}/{c['total_units']} active "
            "latent channels"
        )
    print(f"previews: {run_dir / 'previews'}; logs: {run_dir / 'logs' / 'metrics.csv'}")
    return 0
