"""``microvae demo``: synthetic mitochondria -> a trained model -> a side-by-side PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

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
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from ..config import find_config
    from ..inference import load_model
    from ..io import atomic_path, write_image
    from ..io.preview import save_png, side_by_side
    from ..synthetic import SynthParams, generate, image_seed, write_synthetic_set
    from ..training.fit import fit

    out: Path = args.out
    config = args.config or find_config("demo")
    data_dir = out / "data"
    params = SynthParams(shape=(256, 256), phenotype="tubular")
    print(f"1/5 writing {N_TRAIN} synthetic training images to {data_dir}/")
    write_synthetic_set(data_dir, params, n=N_TRAIN, seed=args.seed, progress=False)
    held = generate(params, seed=image_seed(args.seed + 1, 0))
    meta = {"axes": held.axes, "pixel_size": held.pixel_size, "unit": held.unit}
    write_image(out / "heldout.tif", held.image, **meta)
    write_image(out / "heldout_gt.tif", held.ground_truth, **meta)

    print(f"2/5 training {config} (see {out / 'run'}/ for logs and previews)")
    run_dir, summary = fit(
        config,
        [str(data_dir / "synth_???.tif")],
        out / "run",
        overrides=args.overrides,
        overwrite=True,
    )
    model = load_model(run_dir / "model.pt")

    print("3/5 reconstructing the held-out image")
    recon = model.reconstruct(held.image)
    write_image(out / "heldout_recon.tif", recon, **meta)
    gt = held.ground_truth.astype(np.float64)
    rng = float(gt.max() - gt.min())

    def scores(ref, test):
        ref, test = ref.astype(np.float64), test.astype(np.float64)
        return {
            "psnr_db": round(float(peak_signal_noise_ratio(ref, test, data_range=rng)), 2),
            "ssim": round(float(structural_similarity(ref, test, data_range=rng)), 4),
        }

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

    print("4/5 writing the side-by-side PNG")
    save_png(out / "side_by_side.png", side_by_side(held.image, recon))
    ys, xs = _busiest_crop(held.density, 64)
    save_png(
        out / "side_by_side_zoom.png",
        side_by_side(held.image[ys, xs], recon[ys, xs], zoom=4, gap=8),
    )
    print("5/5 evaluating: fine-structure metrics, latent diagnostics and figures")
    from ..report import evaluate

    evaluation = evaluate(
        model, [out / "heldout.tif"], out / "evaluation", gt="{stem}_gt.tif", progress=False
    )
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
    print(f"evaluation report (metrics, FRC, KL, embeddings, samples): {evaluation.report}")
    print(
        f"open in napari: napari {out / 'heldout.tif'} {out / 'heldout_recon.tif'} "
        "(then View > Grid mode to see them side by side), or open heldout.tif and use "
        f"Plugins > microvae > Reconstruct with the model {run_dir / 'model.pt'}"
    )
    return 0
