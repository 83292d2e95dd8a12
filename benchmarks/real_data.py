"""Real images as the measure: train on every image set of ../shared/data/real, score the
held-out planes against their input and, without ground truth, by noise splitting.

For each image set and model (ladder + dmol, the CPU config configs/demo.yaml; the plain VAE +
Gaussian baseline, the same config with no skips and a global latent), a run of ``--steps``
steps split within each file (a block of planes at the end of a stack, a band of rows of a 2D
image). Recorded: wall-clock training time; every validation's bits/dim, the best, the saved
model's and the last step's (divergence: the last far above the best); on the held-out planes
with most signal ("in focus": the highest variance), the fine-structure metrics against the
input (signal-band HF ratio, SSIM, FRC, morphology ratios) and the noise-split estimate of
the error to the underlying signal (where the data's noise can be measured); the verdict.
Results: results/real_data[_NAME].json; report.py puts them in BENCHMARKS.md.

    python benchmarks/real_data.py                    # all sets, 800 steps each (~20 min)
    python benchmarks/real_data.py --steps 1500 --sets MitoGraphTest001
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import write_result
from fidelity import KEYS, MODELS

from microvae.data.planes import load_planes, split_planes
from microvae.inference import load_model
from microvae.metrics import fine_structure_metrics, split_noise_error
from microvae.training.fit import fit

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
# name: (file, channel); hela-cells.tif's channel 1 is hela-cells_mito_ch1.tif
SETS = {
    "hela-cells_mito_ch1": ("hela-cells_mito_ch1.tif", None),
    "MitoGraphTest001": ("MitoGraphTest001.tif", None),
    "cell": ("cell.tif", None),
    "123002002001": ("123002002001.tif", None),
}
BENCH_MODELS = ("ladder+dmol", "none+gaussian")
IN_FOCUS = 2  # held-out planes scored per set


def _validations(run: Path) -> list[float]:
    rows = []
    for path in sorted((run / "logs").rglob("metrics.csv")):
        with open(path) as fh:
            rows += [
                float(r["val/bits_per_dim"])
                for r in csv.DictReader(fh)
                if r.get("val/bits_per_dim")
            ]
    return rows


def _held_out(path: Path, channel, model) -> tuple[list[np.ndarray], str]:
    """The held-out planes of the run's own split (split_planes) with most signal."""
    cfg = model.config.data
    planes = load_planes([path], channel=channel, axes=cfg.axes, max_gb=cfg.max_memory_gb)
    _, val, _ = split_planes(
        planes, val_fraction=cfg.val_fraction, tile_size=cfg.tile_size, seed=0, mode="within"
    )
    order = np.argsort([-p.data.astype(float).var() for p in val])[:IN_FOCUS]
    return [val[i].data for i in order], ", ".join(val[i].source for i in order)


def run_one(set_name: str, model_name: str, steps: int, work: Path) -> dict:
    file, channel = SETS[set_name]
    over = MODELS[model_name] + [
        f"train.max_steps={steps}",
        "train.val_every=200",
        "data.split=within",
        "train.accelerator=cpu",
        "train.devices=1",
    ]
    if channel is not None:
        over.append(f"data.channel={channel}")
    t0 = time.time()
    run, summary = fit(
        ROOT / "configs" / "demo.yaml",
        [REAL / file],
        work / f"{set_name}_{model_name}",
        overrides=over,
        progress=False,
    )
    seconds = time.time() - t0
    vals = _validations(run)
    model = load_model(run / "model.pt")
    planes, which = _held_out(REAL / file, channel, model)
    metrics, split = [], []
    for plane in planes:
        recon = model.reconstruct_plane(plane)
        m = fine_structure_metrics(plane, recon)
        metrics.append({k: m[k] for k in KEYS})
        try:
            s = split_noise_error(plane, model.reconstruct_plane)
            split.append({"mse": s.mse, "psnr_db": s.psnr_db, "gain": s.gain})
        except ValueError as exc:
            split.append({"error": str(exc)})
    mean = {k: float(np.nanmean([m[k] for m in metrics])) for k in KEYS}
    saved = summary["saved"]
    return {
        "set": set_name,
        "model": model_name,
        "steps": steps,
        "train_seconds": round(seconds, 1),
        "split": summary["data"]["split"],
        "val_bits_per_dim": vals,
        "best_val": min(vals) if vals else None,
        "saved_val": saved.get("val_bits_per_dim"),
        "saved_step": saved.get("step"),
        "last_val": vals[-1] if vals else None,
        "verdict": (summary.get("collapse") or {}).get("verdict"),
        "active_units": (summary.get("collapse") or {}).get("active_units"),
        "scored": which,
        "metrics": mean,
        "split_noise": split,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    ap.add_argument("--models", nargs="*", default=list(BENCH_MODELS), choices=list(MODELS))
    ap.add_argument("--name", default="real_data")
    args = ap.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL}: the real images are absent; nothing to measure")
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets:
            for model_name in args.models:
                row = run_one(set_name, model_name, args.steps, Path(tmp))
                print(
                    f"{set_name} {model_name}: {row['train_seconds']} s, "
                    f"best {row['best_val']:.4f}, "
                    f"saved {row['saved_val']:.4f}, last {row['last_val']:.4f}, "
                    f"HF {row['metrics']['hf_ratio']:.3f}, SSIM {row['metrics']['ssim']:.3f}, "
                    f"split {row['split_noise']}",
                    flush=True,
                )
                rows.append(row)
                write_result(
                    args.name, {"config": "configs/demo.yaml", "steps": args.steps, "rows": rows}
                )


if __name__ == "__main__":
    main()
