"""``microvae predict``: apply a model to files, folders and globs of image stacks."""

from __future__ import annotations

import argparse

from .arguments import add_image_args, add_model_io_args, add_tile_args, fraction, whole_number

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="reconstruct and embed image stacks (TIFF, OME-Zarr) with a trained model",
        description="Apply MODEL to every image in INPUT (TIFF files, OME-Zarr images, folders, "
        "globs), plane by plane in tiles. Writes NAME_recon.tif or, with --format ome-zarr, "
        "NAME_recon.ome.zarr (input's axes, pixel size and dtype), "
        "NAME_embedding.npz (per plane, latent level and channel: the spatial mean and sd of "
        "the posterior mean), "
        "optionally NAME_error.tif and NAME_latents_level{l}.npy, NAME_metrics.csv and "
        "metrics.csv (PSNR, SSIM per plane and per stack), and microvae-predict.json, the record "
        "of which model, settings and input made each output (so outputs written beside the "
        "inputs are never taken for inputs). A file that fails is reported and the others go "
        "on; the exit status is 1 if any failed.",
    )
    add_model_io_args(p)
    add_tile_args(p)
    p.add_argument("--batch-size", type=int, default=8, help="tiles per batch (default 8)")
    add_image_args(p)
    _output_args(p)
    _run_args(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def _output_args(p: argparse.ArgumentParser) -> None:
    """What is written, and how: the outputs, the likelihood's mean or a draw, the metrics and
    the format."""
    p.add_argument("--no-recon", action="store_true", help="do not write NAME_recon.tif")
    p.add_argument("--no-embedding", action="store_true", help="do not write NAME_embedding.npz")
    p.add_argument("--latents", action="store_true", help="write the full latent maps (.npy)")
    p.add_argument("--error", action="store_true", help="write |input - reconstruction|")
    p.add_argument(
        "--sample",
        action="store_true",
        help="draw from the likelihood instead of its mean (with --seed)",
    )
    p.add_argument(
        "--samples",
        type=whole_number(1),
        default=1,
        metavar="N",
        help="draw N posterior reconstructions per tile (every latent level sampled from "
        "q(z|x), with --seed): the reconstruction is their mean (the MMSE estimate) and "
        "NAME_std.tif their per-pixel standard deviation; time grows about N-fold (default 1: "
        "the posterior mean, one pass)",
    )
    p.add_argument(
        "--quantiles",
        type=fraction,
        nargs="+",
        default=(),
        metavar="Q",
        help="with --samples N: also write the draws' quantile Q (0 < Q < 1) per pixel as "
        "NAME_q{100Q}.tif, e.g. --quantiles 0.05 0.95 writes NAME_q5.tif and NAME_q95.tif; "
        "widened like the std by a calibrated model's scale. With few draws the outer "
        "quantiles are too narrow (16 draws hold a 5-95%% interval of about 79%% of the "
        "posterior): for a 90%% interval prefer the reconstruction +/- 1.645 x NAME_std",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--metrics",
        choices=("basic", "fine"),
        default="basic",
        help="basic: PSNR, SSIM, MSE against the input (default); fine: also FRC resolution, "
        "high-frequency ratio, blur and network-morphology ratios (slower: seconds per "
        "large plane)",
    )
    p.add_argument(
        "--format",
        default="tiff",
        help="of the reconstruction, error and latent maps: tiff (latent maps as .npy; the "
        "default) or ome-zarr (NGFF 0.5, chunked by plane; --resume continues a stopped file "
        "from the planes it holds)",
    )


def _run_args(p: argparse.ArgumentParser) -> None:
    """How the files are run: on Dask, resumed, overwritten, with missing chunks."""
    p.add_argument(
        "--dask",
        default=None,
        metavar="CLUSTER",
        help="run the files on Dask workers: local:N (N local processes) or the scheduler's "
        "address, tcp://HOST:PORT (e.g. a dask-jobqueue SLURM cluster); the same outputs as "
        "a serial run",
    )
    p.add_argument(
        "--dask-block",
        type=int,
        default=64,
        metavar="N",
        help="with --dask and --format ome-zarr: a stack of more than N planes is shared "
        "between workers in blocks of N planes (default 64; 0: whole files only)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip files whose outputs are complete (and continue unfinished OME-Zarr ones); "
        "only outputs of the same model, settings and input files are kept (the folder's "
        "microvae-predict.json says which), anything else stops the run and says what differs",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --resume: process anew the files whose outputs came from another model, "
        "other settings or another version of the input (without --resume every file is "
        "processed anew)",
    )
    p.add_argument(
        "--missing-chunks",
        choices=("error", "fill"),
        default="error",
        help="OME-Zarr inputs: a plane whose chunk is missing from the store fails its file "
        "(error, the default: a lost chunk would read as zeros), or reads as the fill value "
        "(fill: for writers that leave chunks of only the fill value unwritten)",
    )


def run(args: argparse.Namespace) -> int:
    from ..api import process_stacks
    from ..inference import load_model

    outputs = {"reconstruction", "embedding"}
    if args.no_recon:
        outputs.discard("reconstruction")
    if args.no_embedding:
        outputs.discard("embedding")
    if args.latents:
        outputs.add("latents")
    if args.error:
        outputs.add("error")
    model = load_model(args.model, device=args.device)
    summary = process_stacks(
        model,
        args.inputs,
        args.out,
        outputs=outputs,
        channel=args.channel,
        axes=args.axes,
        resume=args.resume,
        overwrite=args.overwrite,
        missing_chunks=args.missing_chunks,
        metrics=args.metrics,
        format=args.format,
        dask=args.dask,
        dask_device=args.device,
        dask_block=args.dask_block,
        progress=not args.no_progress,
        tile_size=args.tile_size,
        overlap=args.overlap,
        batch_size=args.batch_size,
        output="sample" if args.sample else "mean",
        seed=args.seed if args.sample or args.samples > 1 else None,
        samples=args.samples,
        quantiles=tuple(args.quantiles),
    )
    print(summary.line())
    for failed in summary.failed:
        print(f"  failed: {failed.message}")
    if summary.metrics_csv:
        print(f"metrics: {summary.metrics_csv}")
    return 1 if summary.failed else 0
