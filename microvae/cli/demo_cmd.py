"""``microvae demo``: synthetic mitochondria -> a trained model -> a side-by-side PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..io import atomic_path, save_png, side_by_side, write_image

__all__ = ["add_parser", "run"]

N_TRAIN = 8


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train on synthetic mitochondria and show original vs reconstruction",
        description="Write synthetic mitochondria, train configs/demo.yaml on them (a few "
        "minutes on a CPU), reconstruct a held-out image, and write a side-by-side PNG, the "
        "reconstruction as TIFF, a few metrics and an evaluation report (OUT/evaluation/"
        "report.md: fine-structure metrics, collapse diagnostics, latent figures) to OUT.",
    )
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="default: demo_out")
    p.add_argument("--config", type=Path, default=None, help="default: configs/demo.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=run)


def _busiest_crop(image: np.ndarray, size: int) -> tuple[slice, slice]:
    """The size x size window with the most tubule pixels (a crop worth zooming into)."""
    h, w = image.shape
    best, where = -1.0, (0, 0)
    for y in range(0, h - size + 1, size // 4):
        for x in range(0, w - size + 1, size // 4):
            score = float(image[y : y + size, x : x + size].sum())
            if score > best:
                best, where = score, (y, x)
    return slice(where[0], where[0] + size), slice(where[1], where[1] + size)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    held, meta = _data(out, args.seed)
    run_dir, summary, model = _train(out, args)
    print("3/5 reconstructing the held-out image")
    recon = model.reconstruct(held.image)
    write_image(out / "heldout_recon.tif", recon, **meta)
    metrics = _scores(out, held, recon, summary)
    _pictures(out, held, recon)
    print("5/5 evaluating: fine-structure metrics, latent diagnostics and figures")
    from ..report import evaluate

    evaluation = evaluate(
        model, [out / "heldout.tif"], out / "evaluation", gt="{stem}_gt.tif", progress=False
    )
    _say(out, run_dir, metrics, summary, evaluation.report)
    return 0


def _data(out: Path, seed: int):
    """Synthetic training images, and a held-out image with its ground truth."""
    from ..synthetic import SynthParams, generate, image_seed, write_synthetic_set

    params = SynthParams(shape=(256, 256), phenotype="tubular")
    print(f"1/5 writing {N_TRAIN} synthetic training images to {out / 'data'}/")
    write_synthetic_set(out / "data", params, n=N_TRAIN, seed=seed, progress=False)
    held = generate(params, seed=image_seed(seed + 1, 0))
    meta = {"axes": held.axes, "pixel_size": held.pixel_size, "unit": held.unit}
    write_image(out / "heldout.tif", held.image, **meta)
    write_image(out / "heldout_gt.tif", held.ground_truth, **meta)
    return held, meta


def _train(out: Path, args: argparse.Namespace):
    """The demo config (or --config) trained on the synthetic images; the model."""
    from ..config import find_config
    from ..inference import load_model
    from ..training import fit

    config = args.config or find_config("demo")
    print(f"2/5 training {config} (see {out / 'run'}/ for logs and previews)")
    run_dir, summary = fit(
        config,
        [str(out / "data" / "synth_???.tif")],
        out / "run",
        overrides=args.overrides,
        overwrite=True,
    )
    return run_dir, summary, load_model(run_dir / "model.pt")


def _scores(out: Path, held, recon: np.ndarray, summary: dict) -> dict:
    """PSNR and SSIM against the ground truth (over its range) and the input; metrics.json."""
    from ..metrics import fidelity

    gt = held.ground_truth.astype(np.float64)
    rng = float(gt.max() - gt.min())

    def scores(ref, test):
        f = fidelity(ref.astype(np.float64), test.astype(np.float64), data_range=rng)
        return {"psnr_db": round(f["psnr_db"], 2), "ssim": round(f["ssim"], 4)}

    metrics = {
        "reconstruction_vs_ground_truth": scores(gt, recon),
        "noisy_input_vs_ground_truth": scores(gt, held.image),
        "reconstruction_vs_noisy_input": scores(held.image, recon),
        "validation_bits_per_dim": summary["validation"].get("val/bits_per_dim"),
        "latent_space": (summary.get("collapse") or {}).get("verdict"),
        "training_seconds": summary["seconds"],
        "steps": summary["steps"],
        "data_range": rng,
    }
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _pictures(out: Path, held, recon: np.ndarray) -> None:
    print("4/5 writing the side-by-side PNG")
    save_png(out / "side_by_side.png", side_by_side(held.image, recon))
    ys, xs = _busiest_crop(held.density, 64)
    save_png(
        out / "side_by_side_zoom.png",
        side_by_side(held.image[ys, xs], recon[ys, xs], zoom=4, gap=8),
    )


def _say(out: Path, run_dir: Path, metrics: dict, summary: dict, report: Path) -> None:
    r, n = metrics["reconstruction_vs_ground_truth"], metrics["noisy_input_vs_ground_truth"]
    print(
        f"\nagainst the noise-free ground truth: reconstruction {r['psnr_db']} dB "
        f"(SSIM {r['ssim']}), noisy input {n['psnr_db']} dB (SSIM {n['ssim']})"
    )
    bpd = metrics["validation_bits_per_dim"]
    print(
        f"latent space: {metrics['latent_space']}; validation {bpd:.3f} bits/dim; trained "
        f"{summary['steps']} steps in {summary['seconds']} s"
    )
    print(f"\nside by side (original | reconstruction | difference): {out / 'side_by_side.png'}")
    print(f"zoomed on tubules: {out / 'side_by_side_zoom.png'}")
    print(f"model: {run_dir / 'model.pt'}; metrics: {out / 'metrics.json'}")
    print(f"evaluation report (metrics, FRC, KL, embeddings, samples): {report}")
    print(
        f"open in napari: napari {out / 'heldout.tif'} {out / 'heldout_recon.tif'} "
        "(then View > Grid mode to see them side by side), or open heldout.tif and use "
        f"Plugins > microvae > Reconstruct with the model {run_dir / 'model.pt'}"
    )
