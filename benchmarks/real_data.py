"""Real images as the measure: train on every image set of ../shared/data/real, score the
held-out planes against their input and, without ground truth, by noise splitting.

For each image set and model (ladder + dmol, the CPU config configs/cpu.yaml; the plain VAE +
Gaussian baseline, the same config with no skips and a global latent), a run of ``--steps``
steps split within each file (planes spread over a stack, a band of rows of a 2D
image). Recorded: wall-clock training time; every validation's bits/dim, the best, the saved
model's and the last step's (divergence: the last far above the best); on the held-out planes
with most signal ("in focus": the highest variance), the fine-structure metrics against the
input (signal-band HF ratio, SSIM, FRC, morphology ratios) and the noise-split estimate of
the error to the underlying signal (where the data's noise can be measured); the verdict; for
generative models the morphology realism of prior samples against the file's tiles.
The reference peer, careamics 0.3.5's LVAE (HDN, ``careamics-lvae``), is trained by
careamics/runner.py in its own environment (careamics/setup.sh; skipped when that is absent)
for the wall-clock time the ladder + dmol run took on the same set, on tiles drawn by
microvae's own tile sampler from the same training planes, and scored by the same code on the
same held-out planes (overlapping tiles for both).
Results: results/real_data[_NAME].json; report.py puts them in BENCHMARKS.md.

    python benchmarks/real_data.py                    # all sets, cpu.yaml's 1600 steps (~1.5 h)
    python benchmarks/real_data.py --steps 1500 --sets MitoGraphTest001
    python benchmarks/real_data.py --config configs/demo.yaml --sets hela-cells_mito_ch1 \
        --models ladder+dmol ladder+dmol+fullres4 ladder+dmol+wide-half --no-peer \
        --name real_data_variants
    python benchmarks/real_data.py --config configs/demo.yaml --sets hela-cells_mito_ch1 \
        --models ladder+dmol --steps 1600 --no-peer --name real_data_variants --append
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _peers import PEER_DIR, PEER_PYTHON, Predicted, run_peer_script
from _results import RESULTS, write_result
from fidelity import KEYS, MODELS
from scipy import ndimage
from skimage.metrics import structural_similarity

from microvae.config import load_config
from microvae.data.config import DataConfig
from microvae.data.planes import load_planes, split_planes
from microvae.data.prepare import prepare_data
from microvae.inference import load_model
from microvae.latent import collect_tiles
from microvae.metrics import fine_structure_metrics, split_noise_error
from microvae.report.evaluate import sample_realism
from microvae.training.session import fit

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
PEER = "careamics-lvae"
PEER_TILES = 8192  # the peer's training tiles, drawn once (with 8 flips/rotations each)
CONFIG = ROOT / "configs" / "cpu.yaml"
# variants measured on real images, to decide what the CPU config keeps (BENCHMARKS.md):
# wider and more mixture components at 1/2, a latent level at full resolution, none
VARIANTS = {
    "ladder+dmol+wide-half": MODELS["ladder+dmol"]
    + ["model.latent_channels=[16,8,8]", "likelihood.components=5"],
    "ladder+dmol+fullres4": MODELS["ladder+dmol"] + ["model.full_resolution_latent=4"],
    "ladder+dmol-fullres": MODELS["ladder+dmol"] + ["model.full_resolution_latent=0"],
}
ALL_MODELS = {**MODELS, **VARIANTS}


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


def _held_out(path: Path, channel, cfg: DataConfig) -> tuple[list[np.ndarray], str]:
    """The held-out planes of the run's own split (split_planes) with most signal."""
    planes = load_planes([path], channel=channel, axes=cfg.axes, max_gb=cfg.max_memory_gb)
    _, val, _ = split_planes(
        planes, val_fraction=cfg.val_fraction, tile_size=cfg.tile_size, seed=0, mode="within"
    )
    order = np.argsort([-p.data.astype(float).var() for p in val])[:IN_FOCUS]
    return [val[i].data for i in order], ", ".join(val[i].source for i in order)


def _overrides(set_name: str, model_name: str, steps: int | None) -> list[str]:
    over = (
        ALL_MODELS[model_name]
        + ([f"train.max_steps={steps}"] if steps else [])
        + [
            "train.val_every=200",
            "data.split=within",
            "train.accelerator=cpu",
            "train.devices=1",
        ]
    )
    channel = SETS[set_name][1]
    return over + ([f"data.channel={channel}"] if channel is not None else [])


def _blanked(plane: np.ndarray) -> np.ndarray:
    """Pixels of regions blanked in the file (a removed scale bar, everything outside a cell):
    connected regions of 256 px or more at exactly the plane's minimum, where every pixel's
    3x3 neighbourhood has that value too (camera data never holds one value over 9 pixels)."""
    low = plane == plane.min()
    core = ndimage.binary_erosion(low, np.ones((3, 3), bool), border_value=1)
    labels, n = ndimage.label(ndimage.binary_dilation(core, np.ones((3, 3), bool)) & low)
    if n == 0:
        return np.zeros(plane.shape, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.isin(labels, np.flatnonzero(sizes >= 256))


def _content(plane: np.ndarray, recon: np.ndarray, data_range: float) -> dict:
    """SSIM (the mean of its map) and RMSE on the image content, the pixels that are not
    blanked (:func:`_blanked`), and RMSE within half a tile (32 px) of a blanked region, where
    a model that never saw one in training may be disturbed by it."""
    blank = _blanked(plane)
    p, r = plane.astype(np.float64), recon.astype(np.float64)
    _, smap = structural_similarity(p, r, data_range=data_range, win_size=7, full=True)
    near = ndimage.binary_dilation(blank, iterations=32) & ~blank
    err = (r - p) ** 2
    return {
        "blanked_fraction": float(blank.mean()),
        "ssim": float(smap[~blank].mean()),
        "rmse": float(np.sqrt(err[~blank].mean())),
        "rmse_near_blank": float(np.sqrt(err[near].mean())) if near.any() else None,
    }


def _score(planes: list[np.ndarray], reconstruct) -> tuple[dict, list[dict]]:
    """Mean fine-structure metrics of ``reconstruct`` on ``planes`` (with SSIM and RMSE on
    the image content, ``content_*``: the same where nothing is blanked) and the noise-split
    estimate on each (or why there is none)."""
    metrics, split = [], []
    for plane in planes:
        recon = reconstruct(plane)
        m = fine_structure_metrics(plane, recon)
        c = _content(plane, recon, m["data_range"])
        metrics.append({k: m[k] for k in KEYS} | {f"content_{k}": v for k, v in c.items()})
        try:
            s = split_noise_error(plane, reconstruct)
            split.append({"mse": s.mse, "psnr_db": s.psnr_db, "gain": s.gain})
        except ValueError as exc:
            split.append({"error": str(exc)})
    mean = {}
    for k in metrics[0]:
        vals = [m[k] for m in metrics if m[k] is not None]
        mean[k] = float(np.nanmean(vals)) if vals else None
    return mean, split


def run_one(set_name: str, model_name: str, steps: int, work: Path, config: Path = CONFIG) -> dict:
    file, channel = SETS[set_name]
    t0 = time.time()
    run, summary = fit(
        config,
        [REAL / file],
        work / f"{set_name}_{model_name}",
        overrides=_overrides(set_name, model_name, steps),
        progress=False,
    )
    seconds = time.time() - t0
    vals = _validations(run)
    model = load_model(run / "model.pt")
    planes, which = _held_out(REAL / file, channel, model.config.data)
    mean, split = _score(planes, model.reconstruct)
    realism = None
    if model.vae.can_generate:  # prior samples against the file's tiles, as evaluate does
        tiles = collect_tiles(model, [REAL / file], max_tiles=128, channel=channel)
        realism = sample_realism(model, tiles.tiles)
    saved = summary["saved"]
    top = None
    if model.top_prior is not None:  # the fitted aggregate's spread against the prior's
        tril = model.top_prior.scale_tril
        top = {
            "aggregate_sd": float(torch.sqrt((tril * tril).sum(1)).mean()),
            "prior_sd": float(model.vae.priors()[0].std.mean()),
            "shrinkage": model.top_prior.shrinkage,
        }
    return {
        "set": set_name,
        "model": model_name,
        "steps": steps,
        "overrides": ALL_MODELS[model_name],
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
        "realism": realism,
        "top_prior": top,
    }


def run_peer(set_name: str, seconds: float, work: Path, config: Path = CONFIG) -> dict:
    """careamics' LVAE for ``seconds`` of training on the set, scored as microvae's models."""
    file, channel = SETS[set_name]
    cfg = load_config(config, _overrides(set_name, "ladder+dmol", 1)).data
    data = prepare_data([REAL / file], cfg, n_train_tiles=1, seed=0)
    rng = np.random.default_rng(0)
    t = cfg.tile_size
    train_planes = data.train.planes
    pos = [data.train.sampler.sample(rng) for _ in range(PEER_TILES)]
    tiles = np.stack([train_planes[i][y : y + t, x : x + t] for i, y, x in pos])
    val = np.stack([data.val.planes[i][y : y + t, x : x + t] for i, y, x in data.val.positions])
    pixels = np.concatenate([p.ravel()[:: max(1, p.size // 200_000)] for p in train_planes])
    out = work / f"{set_name}_{PEER}"
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "tiles.npy", tiles)
    np.save(out / "val.npy", val)
    stats = {"mean": float(pixels.mean()), "std": float(pixels.std())}
    (out / "stats.json").write_text(json.dumps(stats))
    run_peer_script(
        "runner.py",
        "train", "--tiles", str(out / "tiles.npy"), "--val", str(out / "val.npy"),
        "--stats", str(out / "stats.json"), "--seconds", str(seconds), "--out", str(out),
    )  # fmt: skip
    meta = json.loads((out / "meta.json").read_text())
    planes, which = _held_out(REAL / file, channel, cfg)
    # every plane the scoring will reconstruct (the held-out planes and their noise-split
    # halves), found by a dry run, then reconstructed by the peer in one call
    wanted: list[np.ndarray] = []
    _score(planes, lambda p: wanted.append(p) or np.zeros(p.shape, np.float32))
    np.savez(out / "planes.npz", *wanted)
    run_peer_script(
        "runner.py", "predict", "--model", str(out),
        "--planes", str(out / "planes.npz"), "--out", str(out / "recon.npz"),
    )  # fmt: skip
    recon = np.load(out / "recon.npz")
    peer = Predicted([(p, recon[f"arr_{i}"]) for i, p in enumerate(wanted)])
    mean, split = _score(planes, peer.reconstruct)
    return {
        "set": set_name,
        "model": PEER,
        "train_seconds": meta["train_seconds"],
        "peer_steps": meta["steps"],
        "peer": {k: meta[k] for k in ("careamics", "torch", "filters", "z_dims", "parameters")},
        "val_loss": [v["val_loss"] for v in meta["validations"]],
        "scored": which,
        "metrics": mean,
        "split_noise": split,
    }


def _previous_rows(name: str) -> list[dict]:
    """The rows of results/NAME.json, for --append (none when it is absent)."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=None, help="default: the config's")
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    ap.add_argument("--models", nargs="*", default=list(BENCH_MODELS), choices=list(ALL_MODELS))
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--name", default="real_data")
    ap.add_argument("--no-peer", action="store_true", help=f"skip {PEER}")
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs here (default: none)")
    ap.add_argument(
        "--append",
        action="store_true",
        help="keep the rows already in results/NAME.json and add these (each row records "
        "its command line)",
    )
    args = ap.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL}: the real images are absent; nothing to measure")
    peer = not args.no_peer and "ladder+dmol" in args.models
    if peer and not PEER_PYTHON.exists():
        print(f"{PEER_PYTHON} is absent (run {PEER_DIR / 'setup.sh'}): {PEER} is skipped")
        peer = False
    torch.set_num_threads(2)
    steps = args.steps or load_config(args.config).train.max_steps
    rows = _previous_rows(args.name) if args.append else []
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            tmp = args.keep
            tmp.mkdir(parents=True, exist_ok=True)
        for set_name in args.sets:
            for model_name in args.models:
                row = run_one(set_name, model_name, steps, Path(tmp), args.config)
                print(
                    f"{set_name} {model_name}: {row['train_seconds']} s, "
                    f"best {row['best_val']:.4f}, "
                    f"saved {row['saved_val']:.4f}, last {row['last_val']:.4f}, "
                    f"HF {row['metrics']['hf_ratio']:.3f}, SSIM {row['metrics']['ssim']:.3f}, "
                    f"split {row['split_noise']}",
                    flush=True,
                )
                row["command"] = sys.argv[1:]
                rows.append(row)
                if peer and model_name == "ladder+dmol":
                    p = run_peer(set_name, row["train_seconds"], Path(tmp), args.config)
                    print(
                        f"{set_name} {PEER}: {p['train_seconds']} s, {p['peer_steps']} steps, "
                        f"HF {p['metrics']['hf_ratio']:.3f}, SSIM {p['metrics']['ssim']:.3f}, "
                        f"split {p['split_noise']}",
                        flush=True,
                    )
                    rows.append(p)
                write_result(
                    args.name,
                    {
                        "config": f"configs/{args.config.name}",
                        "steps": steps,
                        "args": sys.argv[1:],
                        "rows": rows,
                    },
                )


if __name__ == "__main__":
    main()
