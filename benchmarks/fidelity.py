"""Fine-structure fidelity of five models trained the same way, on synthetic and real images.

Trains, for the same number of steps on the same synthetic training set: ladder + dmol, ladder +
laplace, ladder + gaussian, deterministic U-Net + dmol, plain VAE (global latent vector) +
gaussian. Each is evaluated on held-out synthetic images against the clean ground truth and the
noisy input (reconstruction modes: full posterior, coarse-to-fine without the finest level,
mean of 8 reconstructions with sampled latents), on the real images of ../shared/data/real
against the input, and with its bits/dim on held-out tiles, KL per level, active units and
verdict. Results: results/fidelity[_quick].json; BENCHMARKS.md is made from them by report.py.

    python benchmarks/fidelity.py --quick        # demo.yaml-sized models, minutes on a CPU
    python benchmarks/fidelity.py                # mito2d.yaml-sized models, for a GPU
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from _results import write_result

from microvae.devices import pick_device
from microvae.inference import TileOptions, TrainedModel, load_model
from microvae.io import read_image
from microvae.latent import tiles_from_planes
from microvae.latent.diagnostics import diagnose
from microvae.metrics import fine_structure_metrics
from microvae.synthetic import (
    SyntheticImage,
    SynthParams,
    generate,
    image_seed,
    write_synthetic_set,
)
from microvae.training.session import fit

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"
MODELS = {
    "ladder+dmol": ["model.skip_mode=ladder", "likelihood.name=dmol"],
    "ladder+laplace": ["model.skip_mode=ladder", "likelihood.name=laplace"],
    "ladder+gaussian": ["model.skip_mode=ladder", "likelihood.name=gaussian"],
    "deterministic+dmol": [
        "model.skip_mode=deterministic",
        "model.full_resolution_latent=0",  # a ladder level only
        "likelihood.name=dmol",
    ],
    "none+gaussian": [
        "model.skip_mode=none",
        "model.full_resolution_latent=0",
        "model.latent=global",
        "model.global_latent_dim=64",
        "likelihood.name=gaussian",
    ],
}
KEYS = [
    "psnr_db",
    "ssim",
    "frc_resolution_px",
    "hf_ratio",
    "blur_test",
    "ratio_total_length_px",
    "ratio_n_branches",
    "ratio_n_junctions",
    "ratio_n_end_points",
]
# (file, channel, planes used): the real images, against their input
REAL_IMAGES = [("hela-cells_mito_ch1.tif", None, 1), ("MitoGraphTest001.tif", None, 4)]


def _mean(rows: list[dict]) -> dict:
    out = {}
    for k in KEYS:
        v = np.array([r[k] for r in rows], float)
        v = v[np.isfinite(v)]
        out[k] = round(float(v.mean()), 4) if len(v) else None
    return out


def _reconstructions(model: TrainedModel, image: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    modes = {"full": model.reconstruct(image)}
    levels = model.vae.n_latent_levels
    if model.config.model.skip_mode == "ladder" and levels > 1:
        modes["coarse_to_fine"] = model.reconstruct(
            image, options=TileOptions(posterior_levels=levels - 1)
        )
    if model.vae.can_generate:
        draws = [
            model.reconstruct(
                image, options=TileOptions(sample_latents=True, seed=seed + k)
            ).astype(np.float64)
            for k in range(8)
        ]
        modes["mean_of_samples"] = np.mean(draws, axis=0).round().astype(image.dtype)
    return modes


@torch.no_grad()
def _bits_per_dim(model: TrainedModel, tiles: np.ndarray) -> dict[str, float]:
    """-ELBO in bits per pixel on held-out tiles (not a bound for the deterministic U-Net),
    and its two terms: -log p(x|z) (reconstruction) and the KL, also in bits per pixel."""
    recon, kl, dims = 0.0, 0.0, 0
    for a in range(0, len(tiles), 16):
        out = model.vae(model.to_tensor(tiles[a : a + 16]))
        recon += float(-out.log_px.sum())
        kl += float(out.kl_per_level.sum())
        dims += out.n_dims * len(out.log_px)
    return {
        "bits_per_dim": round((recon + kl) / dims / math.log(2), 4),
        "recon_bits_per_dim": round(recon / dims / math.log(2), 4),
        "kl_bits_per_dim": round(kl / dims / math.log(2), 4),
    }


def synth_params(quick: bool, overrides: list[str] = ()) -> SynthParams:
    """The synthetic images' parameters; ``overrides`` are KEY=VALUE (YAML values), e.g.
    ``read_noise_electrons=0.3``."""
    fields = {"shape": (256, 256) if quick else (512, 512), "phenotype": "tubular"}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--synth {item!r}: expected KEY=VALUE, e.g. read_noise_electrons=0.3")
        fields[key] = yaml.safe_load(value)
    return SynthParams(**fields)


def held_out(quick: bool, overrides: list[str] = ()) -> tuple[SynthParams, list[SyntheticImage]]:
    """The synthetic image parameters and the held-out images (seeds apart from training's)."""
    params = synth_params(quick, overrides)
    return params, [generate(params, seed=image_seed(1000, i)) for i in range(4 if quick else 16)]


def held_out_tiles(held: list[SyntheticImage], tile: int) -> tuple[np.ndarray, np.ndarray]:
    """The tiles every model's bits/dim is measured on (8 per image, most signal first), and
    the ground truth at the same places: two (N, tile, tile) arrays."""
    sets = [tiles_from_planes([s.image], tile, max_tiles=8, min_signal=0.0) for s in held]
    truth = [
        s.ground_truth[y : y + tile, x : x + tile]
        for s, ts in zip(held, sets, strict=True)
        for _, y, x in ts.positions
    ]
    return np.concatenate([ts.tiles for ts in sets]), np.stack(truth)


def evaluate(model: TrainedModel, held: list, seed: int) -> dict:
    by_mode: dict[str, dict[str, list]] = {}
    noisy_vs_gt = []
    for s in held:
        noisy_vs_gt.append(fine_structure_metrics(s.ground_truth, s.image, pixel_size=0.065))
        for mode, recon in _reconstructions(model, s.image, seed).items():
            d = by_mode.setdefault(mode, {"vs_ground_truth": [], "vs_input": []})
            d["vs_ground_truth"].append(
                fine_structure_metrics(s.ground_truth, recon, pixel_size=0.065)
            )
            d["vs_input"].append(fine_structure_metrics(s.image, recon, pixel_size=0.065))
    tiles, _ = held_out_tiles(held, model.default_tile())
    diag = diagnose(model, tiles)
    result = {
        "modes": {m: {k: _mean(v) for k, v in d.items()} for m, d in by_mode.items()},
        "noisy_input_vs_ground_truth": _mean(noisy_vs_gt),
        **_bits_per_dim(model, tiles),
        "bound_is_valid": model.vae.elbo_is_bound,
        "kl_per_level_nats": [round(v, 3) for v in diag["kl_per_level_nats"]],
        "active_units": f"{diag['active_units']}/{diag['total_units']}",
        "sensitivity": round(diag["sensitivity"], 4),
        "verdict": diag["verdict"],
    }
    best = max(result["modes"], key=lambda m: result["modes"][m]["vs_ground_truth"]["psnr_db"])
    result["best_mode"] = best
    return result


def evaluate_real(model: TrainedModel) -> dict:
    out = {}
    for name, channel, n_planes in REAL_IMAGES:
        path = REAL / name
        if not path.is_file():  # the shared data are not everywhere
            continue
        data = read_image(path, channel=channel).data
        if data.ndim == 2:
            planes = [data]
        else:  # the in-focus middle of a stack
            mid = data.shape[0] // 2 - n_planes // 2
            planes = list(data[mid : mid + n_planes])
        out[name] = _mean([fine_structure_metrics(p, model.reconstruct(p)) for p in planes])
    return out


def targets(results: dict) -> list[dict]:
    """The issue's targets, each with the measured numbers and whether it is met."""
    lad, plain, det = (
        results["ladder+dmol"],
        results["none+gaussian"],
        results["deterministic+dmol"],
    )
    best = lad["modes"][lad["best_mode"]]["vs_ground_truth"]
    noisy = lad["noisy_input_vs_ground_truth"]
    plain_psnr = plain["modes"]["full"]["vs_ground_truth"]["psnr_db"]
    morph = [best[k] for k in KEYS if k.startswith("ratio_")]
    valid = {n: r["bits_per_dim"] for n, r in results.items() if r["bound_is_valid"]}
    rows = [
        (
            "ladder+dmol PSNR vs ground truth >= plain+gaussian + 6 dB",
            f"{best['psnr_db']:.2f} vs {plain_psnr:.2f}",
            best["psnr_db"] >= plain_psnr + 6,
        ),
        (
            "best mode >= noisy input + 2 dB (vs ground truth)",
            f"{best['psnr_db']:.2f} ({lad['best_mode']}) vs {noisy['psnr_db']:.2f}",
            best["psnr_db"] >= noisy["psnr_db"] + 2,
        ),
        ("high-frequency ratio >= 0.85", f"{best['hf_ratio']:.2f}", best["hf_ratio"] >= 0.85),
        (
            "network-morphology ratios within 10% of the ground truth's",
            ", ".join(f"{m:.2f}" for m in morph),
            all(abs(m - 1) <= 0.1 for m in morph),
        ),
        (
            "ladder+dmol best bits/dim among valid bounds",
            ", ".join(f"{n} {v:.3f}" for n, v in valid.items()),
            min(valid, key=valid.get) == "ladder+dmol",
        ),
        (
            "deterministic U-Net collapsed, ladder healthy",
            f"{det['verdict']}, {lad['verdict']}",
            det["verdict"] == "collapsed" and lad["verdict"] == "healthy",
        ),
    ]
    return [{"target": t, "measured": m, "met": bool(ok)} for t, m, ok in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="demo.yaml models, CPU minutes")
    ap.add_argument("--steps", type=int, default=None, help="default 800 quick, 20000 full")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--synth",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="synthetic image parameters (SynthParams), e.g. read_noise_electrons=0.3",
    )
    ap.add_argument(
        "--name", default=None, help="results/NAME.json; default fidelity_quick or fidelity"
    )
    args = ap.parse_args()
    config = ROOT / "configs" / ("demo.yaml" if args.quick else "mito2d.yaml")
    steps = args.steps or (800 if args.quick else 20000)
    n_train = 8 if args.quick else 32
    params, held = held_out(args.quick, args.synth)
    results, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_synthetic_set(data, params, n=n_train, seed=0, progress=False)
        for name in args.models:
            t0 = time.perf_counter()
            run, summary = fit(
                config,
                [str(data / "synth_???.tif")],
                Path(tmp) / name,
                overrides=MODELS[name]
                + [f"train.max_steps={steps}", "data.num_workers=0", "train.devices=1"],
                progress=False,
            )
            seconds[name] = round(time.perf_counter() - t0, 1)
            model = load_model(run / "model.pt", device=args.device)
            results[name] = evaluate(model, held, seed=0)
            results[name]["real_vs_input"] = evaluate_real(model)
            results[name]["training_seconds"] = seconds[name]
            print(name, results[name]["modes"]["full"]["vs_ground_truth"], flush=True)
    payload = {
        "mode": "quick" if args.quick else "full",
        "config": str(config.relative_to(ROOT)),
        "steps": steps,
        "train_images": n_train,
        "held_out_images": len(held),
        "image_shape": list(params.shape),
        "synth_overrides": args.synth,
        "models": results,
    }
    if set(MODELS) <= set(results):
        payload["targets"] = targets(results)
    device = pick_device(args.device)
    name = args.name or ("fidelity_quick" if args.quick else "fidelity")
    path = write_result(name, payload, device)
    print(f"written: {path}")


if __name__ == "__main__":
    main()
