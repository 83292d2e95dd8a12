"""``microvae evaluate``: metrics, diagnostics, figures and a report for a model on images."""

from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import add_image_args, add_model_io_args, add_tile_args

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on images: metrics.csv, diagnostics.json, figures, report.md",
        description="Reconstruct every plane of INPUT (TIFF files, folders, globs) and score it "
        "against the input and, with --gt, against the ground truth (the input's own score "
        "beside it): PSNR, SSIM, FRC resolution, high-frequency ratio, blur, network "
        "morphology. On tiles of the inputs: collapse diagnostics, an embedding map and, "
        "for a generative model, prototype, samples, interpolation, traversals and holes. "
        "Writes OUT/metrics.csv, OUT/diagnostics.json, OUT/figures/*.png and OUT/report.md.",
    )
    add_model_io_args(p)
    p.add_argument(
        "--gt",
        default=None,
        metavar="PATTERN",
        help="ground truth beside each input; {stem} is the input's name without .tif, "
        "e.g. --gt '{stem}_gt.tif'",
    )
    p.add_argument(
        "--labels",
        type=Path,
        default=None,
        metavar="CSV",
        help="CSV with columns file and a label (e.g. manifest.csv of microvae synth): "
        "colours the embedding map and groups the holes; default the file names",
    )
    p.add_argument("--label-column", default="label", help="column of --labels (default label)")
    p.add_argument("--max-tiles", type=int, default=256, help="tiles for the latent figures")
    add_tile_args(p)
    p.add_argument(
        "--posterior-levels",
        type=int,
        default=None,
        help="ladder: take only the top K levels from the image, the rest at prior means "
        "(coarse-to-fine reconstruction); default all",
    )
    add_image_args(p)
    _analysis_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def _analysis_args(p: argparse.ArgumentParser) -> None:
    """What is estimated beyond the metrics: the noise-split error and the IWAE bound."""
    p.add_argument(
        "--split-noise",
        action="store_true",
        help="estimate the error to the noise-free signal without ground truth: split each "
        "plane's photo-electrons into two halves by binomial thinning, reconstruct one, score "
        "it against the other (gain and offset from the image's mean-variance)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=0,
        metavar="N",
        help="how sure of each structure: N posterior draws of the first plane of the first "
        "files (a 3D model: their first volume, its 3D network), network statistics with "
        "intervals, branch presence, and with --split-noise the calibration of the draws' "
        "spread (0: not computed)",
    )
    p.add_argument(
        "--iwae",
        type=int,
        default=0,
        metavar="K",
        help="also the importance-weighted bound with K posterior samples per tile beside the "
        "ELBO, on the latent figures' tiles (bits/dim; K = 16 is common; 0: not computed)",
    )


def run(args: argparse.Namespace) -> int:
    from ..inference import load_model
    from ..report import evaluate, read_labels

    labels = read_labels(args.labels, args.label_column) if args.labels else None
    model = load_model(args.model, device=args.device)
    result = evaluate(
        model,
        args.inputs,
        args.out,
        gt=args.gt,
        labels=labels,
        channel=args.channel,
        axes=args.axes,
        max_tiles=args.max_tiles,
        seed=args.seed,
        progress=not args.no_progress,
        tile_size=args.tile_size,
        overlap=args.overlap,
        posterior_levels=args.posterior_levels,
        split_noise=args.split_noise,
        iwae=args.iwae,
        samples=args.samples,
    )
    _say(result, args.split_noise)
    if result.diagnostics:  # a 3D model's evaluation has none (the report says why)
        print(f"latent space: {result.diagnostics.get('verdict')}")
    for plane in result.uncertainty.get("planes", []):
        v, lo, hi = plane["intervals"]["total_length_px"]
        print(f"{plane['file']}: network length {v:.2f} [{lo:.2f}, {hi:.2f}] of the input's")
    print(f"report: {result.report}")
    return 0


def _say(result, split_noise: bool) -> None:
    """The means over all files, the samples' realism and the bounds, a line each."""
    for row in (r for r in result.rows if r["file"] == "all"):
        print(
            f"{row['compared']} vs {row['reference']}: {row['psnr_db']:.2f} dB, SSIM "
            f"{row['ssim']:.3f}, FRC {row['frc_resolution_px']:.2f} px, HF ratio "
            f"{row['hf_ratio']:.2f}, network length ratio {row['ratio_total_length_px']:.2f}"
        )
        if "hf_ratio_z" in row:  # a 3D model's volumes
            print(
                f"  volumes: 3D network length ratio {row['net3d_total_length']:.2f}, junctions "
                f"{row['net3d_n_junctions']:.2f}, HF ratio along Z {row['hf_ratio_z']:.2f}"
            )
        if split_noise and "split_psnr_db" in row:
            print(
                f"  noise-split estimate of the error to the signal: RMSE "
                f"{row['split_rmse']:.4g}, {row['split_psnr_db']:.2f} dB (gain "
                f"{row['split_gain']:.3g} per photo-electron)"
            )
    for t, r in result.latent.get("realism", {}).items():
        score = "n/a" if r["score"] is None else f"{r['score']:.2f}"
        print(
            f"samples ({t}): morphology distance to the data {score} (two halves of the "
            f"data: {r['reference_score']:.2f}; {r['samples_kept']:.0%} of samples with signal)"
        )
    b = result.diagnostics.get("bounds")
    if b:
        print(
            f"bounds on {b['n_tiles']} tiles: ELBO {b['elbo_bits_per_dim']:.4f} bits/dim, "
            f"IWAE_{b['k']} {b['iwae_bits_per_dim']:.4f} bits/dim"
        )
