"""Benchmark: posterior samples on every real image set, without ground truth: is the spread
right (before and after ``microvae calibrate``), does the MMSE of 16 draws beat the single
reconstruction, and how do both compare with careamics 0.3.5's Noise2Void (N2V2) trained for
the same wall-clock time.

Per set of ../shared/data/real (as benchmarks/real_data.py: configs/cpu.yaml, ladder + dmol,
the split within each file, the held-out planes with most signal):

- the noise-split PSNR (dB) of the single reconstruction (every level's posterior mean) and of
  the MMSE of ``--samples`` draws, on the same split of each held-out plane (target: MMSE >=
  single + 0.5 dB); seconds per draw;
- ``microvae calibrate`` (report.calibrate_arrays) on those planes: the error over the
  predicted variance at 1/4, 1/2 and 3/4 of the dose and extrapolated to the full dose, before
  and, on a fresh split with the fitted scale, after (target after: within [0.8, 1.25]);
- N2V2 (careamics/n2v2.py, its own environment; careamics' defaults, patches of 64 x 64) on
  the same training planes for the seconds microvae's training took, scored by the same split
  (target: the MMSE ahead by >= 1 dB on every set).

    python benchmarks/real_calibration.py [--steps N] [--sets cell ...] [--samples 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _peers import PEER_PYTHON, Predicted, run_peer_script
from _results import write_result
from real_data import CONFIG, REAL, SETS, _held_out, _overrides

from microvae.config import load_config
from microvae.data import prepare_data
from microvae.inference import load_model
from microvae.metrics import split_noise_error
from microvae.report import calibrate_arrays
from microvae.training.session import fit

PEER = "careamics-n2v2"
PATCH = 64


def _psnr(planes: list[np.ndarray], reconstruct) -> list[float | None]:
    """The noise-split PSNR of ``reconstruct`` on each plane (split seed 0)."""
    return [split_noise_error(p, reconstruct, seed=0).psnr_db for p in planes]


def run_set(name: str, steps: int | None, samples: int, work: Path, peer: bool) -> dict:
    file, channel = SETS[name]
    t0 = time.time()
    run, _ = fit(
        CONFIG,
        [REAL / file],
        work / name,
        overrides=_overrides(name, "ladder+dmol", steps),
        progress=False,
    )
    seconds = time.time() - t0
    model = load_model(run / "model.pt")
    planes, which = _held_out(REAL / file, channel, model.config.data)
    row = {"set": name, "train_seconds": round(seconds, 1), "scored": which}
    row["psnr_single_db"] = _psnr(planes, model.reconstruct)
    t1 = time.perf_counter()
    row["psnr_mmse_db"] = _psnr(
        planes, lambda x: model.reconstruct(x, samples=samples, seed=0, calibrated=False)
    )
    pixels = sum(p.size for p in planes)
    row["seconds_per_draw_per_megapixel"] = (time.perf_counter() - t1) / samples / pixels * 1e6
    names = [f"{name} held-out plane {i}" for i in range(len(planes))]
    report = calibrate_arrays(model, planes, names, samples=samples)
    row["calibrate"] = {
        "scale": report.scale,
        "seconds": round(report.seconds, 1),
        "before": report.before.to_dict(),
        "after": report.after.to_dict(),
    }
    print(
        f"{name}: {seconds:.0f} s, single {row['psnr_single_db']}, MMSE {row['psnr_mmse_db']}, "
        f"slopes before {[round(c.slope, 3) for c in report.before.curves]} -> "
        f"{report.before.slope:.3f}, after -> {report.after.slope:.3f}",
        flush=True,
    )
    if peer:
        row["n2v2"] = run_n2v2(name, planes, seconds, work)
        print(f"{name} {PEER}: {row['n2v2']['psnr_db']}", flush=True)
    return row


def run_n2v2(name: str, planes: list[np.ndarray], seconds: float, work: Path) -> dict:
    """N2V2 in 2D on the run's training planes for ``seconds``, scored on ``planes``."""
    file, channel = SETS[name]
    cfg = load_config(CONFIG, _overrides(name, "ladder+dmol", 1)).data
    data = prepare_data([REAL / file], cfg, n_train_tiles=1, seed=0)
    out = work / f"{name}_{PEER}"
    out.mkdir(parents=True, exist_ok=True)
    # the planes the split scoring will reconstruct, found by a dry run
    wanted: list[np.ndarray] = []
    _psnr(planes, lambda p: wanted.append(p) or np.zeros(p.shape, np.float32))
    np.savez(out / "train.npz", *data.train.planes)
    np.savez(out / "inputs.npz", *wanted)
    run_peer_script(
        "n2v2.py", "--train", str(out / "train.npz"), "--axes", "YX",
        "--patch", str(PATCH), str(PATCH), "--seconds", str(seconds),
        "--predict", str(out / "inputs.npz"), "--out", str(out),
    )  # fmt: skip
    meta = json.loads((out / "meta.json").read_text())
    recon = np.load(out / "recon.npz")
    peer = Predicted([(x, recon[f"arr_{i}"]) for i, x in enumerate(wanted)])
    return {"psnr_db": _psnr(planes, peer.reconstruct), "peer": meta}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=None, help="default: cpu.yaml's")
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--no-peer", action="store_true", help=f"skip {PEER}")
    ap.add_argument("--name", default="real_calibration")
    args = ap.parse_args()
    if not REAL.is_dir():
        raise SystemExit(f"{REAL}: the real images are absent; nothing to measure")
    peer = not args.no_peer
    if peer and not PEER_PYTHON.exists():
        print(f"{PEER_PYTHON} is absent (run careamics/setup.sh): {PEER} is skipped")
        peer = False
    torch.set_num_threads(2)
    steps = args.steps or load_config(CONFIG).train.max_steps
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            rows.append(run_set(name, steps, args.samples, Path(tmp), peer))
            write_result(
                args.name,
                {
                    "config": f"configs/{CONFIG.name}",
                    "steps": steps,
                    "samples": args.samples,
                    "args": sys.argv[1:],
                    "rows": rows,
                },
            )


if __name__ == "__main__":
    main()
