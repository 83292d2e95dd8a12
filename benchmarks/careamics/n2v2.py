"""careamics 0.3.5's Noise2Void (N2V2), trained and run through its public API (CAREamist): the
denoiser most users run, as a peer of benchmarks/stacks3d.py (3D) and benchmarks/real_data.py
(2D). Runs in benchmarks/careamics/.venv (setup.sh), never in microvae's.

The configuration is careamics' own defaults (``create_advanced_n2v_config`` with
``use_n2v2=True``: its UNet, N2V2's blur pool and masking, Adam, ReduceLROnPlateau, mean/std
normalisation, XY flips and rotations), given a patch shape, a batch size and a wall-clock
budget (Lightning's ``max_time``); the number of epochs is set high enough that the budget ends
the training. The prediction is careamics' tiled prediction with the weights of the last
epoch, as ``CAREamist.predict`` loads them.

    python n2v2.py --train train.npz [--val val.npz] --axes ZYX --patch 8 64 64 \
        --seconds 300 --predict inputs.npz --out DIR       # writes DIR/recon.npz, DIR/meta.json

``train.npz`` / ``val.npz`` / ``inputs.npz`` hold arrays of the given axes (``ZYX``: volumes;
``YX``: planes); ``recon.npz`` holds the reconstructions of ``inputs.npz`` under the same names,
float32 in the input's units.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from careamics.careamist import CAREamist
from careamics.config import create_advanced_n2v_config


def _arrays(path: str) -> list[np.ndarray]:
    data = np.load(path)
    return [data[k].astype(np.float32) for k in data.files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument(
        "--val", default=None, help="default: careamics' 8 patches of the training data"
    )
    ap.add_argument("--axes", required=True, choices=["ZYX", "YX"])
    ap.add_argument("--patch", type=int, nargs="+", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--predict", required=True)
    ap.add_argument("--overlap", type=int, nargs="+", default=None)
    ap.add_argument("--seed", type=int, default=1)  # careamics requires a seed > 0
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if len(args.patch) != len(args.axes):
        raise SystemExit(f"--patch needs {len(args.axes)} sizes for axes {args.axes}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = _arrays(args.train)
    # careamics' default holds out 8 patches of the training data for validation, more than
    # a small stack has: at most a quarter of its non-overlapping patches
    patches = sum(int(np.prod([s // p for s, p in zip(a.shape, args.patch)])) for a in train)
    n_val = max(1, min(8, patches // 4))
    cfg = create_advanced_n2v_config(
        "n2v2_peer",
        "array",
        args.axes,
        args.patch,
        args.batch,
        num_epochs=100_000,  # the budget ends the training
        n_val_patches=n_val,
        use_n2v2=True,
        num_workers=0,
        trainer_params={"max_time": {"seconds": args.seconds}, "accelerator": "cpu"},
        logger="none",
        seed=args.seed,
    )
    careamist = CAREamist(cfg, work_dir=out / "work", enable_progress_bar=False)
    t0 = time.time()
    val = _arrays(args.val) if args.val else None
    careamist.train(train_data=train, val_data=val)
    seconds = time.time() - t0
    steps = int(careamist.trainer.global_step)
    data = np.load(args.predict)
    overlap = tuple(args.overlap or [p // 4 for p in args.patch])
    recon = {}
    t1 = time.time()
    for name in data.files:
        x = data[name].astype(np.float32)
        # careamics tiles need the tile inside the image: a smaller image is one tile
        tile = tuple(min(p, s) for p, s in zip(args.patch, x.shape))
        ov = tuple(min(o, t // 2) for o, t in zip(overlap, tile))
        pred, _ = careamist.predict(x, tile_size=tile, tile_overlap=ov, axes=args.axes)
        recon[name] = np.asarray(pred[0], np.float32).reshape(x.shape)
    np.savez(out / "recon.npz", **recon)
    meta = {
        "careamics": __import__("careamics").__version__,
        "torch": torch.__version__,
        "algorithm": "N2V2 (careamics defaults)",
        "axes": args.axes,
        "patch": args.patch,
        "batch": args.batch,
        "steps": steps,
        "val_patches": None if args.val else n_val,
        "train_seconds": round(seconds, 1),
        "predict_seconds": round(time.time() - t1, 1),
        "parameters": sum(p.numel() for p in careamist.model.parameters()),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
