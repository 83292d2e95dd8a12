"""careamics 0.3.5's LVAE (HDN), trained and run by our own loop: the reference peer of
benchmarks/real_data.py. Runs in benchmarks/careamics/.venv (setup.sh), never in microvae's.

careamics 0.3.x has no training module for its LVAE, so this drives it from its parts: the
model from ``model_factory(LVAEConfig)``, the Gaussian likelihood with per-pixel log-variance
from ``likelihood_factory``, and the HDN loss from ``lvae_loss_factory("hdn")``, with
careamics' defaults (Adam at torch's default learning rate, KL weight 1, analytic KL off,
dropout 0.1) except the network's size (``--filters``, ``--z-dims``), which is set to cost about
what microvae's CPU config costs per step. The data are normalised by the training planes' mean
and standard deviation, as careamics does.

    train:   tiles (N, T, T) from microvae's own tile sampler (the same foreground share, so
             both models see the same data), validation tiles (M, T, T), a wall-clock budget;
             random flips and rotations (careamics' XY flip and rotate-90 augmentations);
             validation loss every ``--val-every`` steps, the best weights kept and saved.
    3D:      tiles (N, D, T, T) build the LVAE in 3D (its factories take 3 conv strides; the
             levels halve Y and X only), augmented by flips and rotations in XY, and volumes
             are predicted by 3D tiles (microvae's grid in XY, the same blend along Z); this is
             benchmarks/stacks3d.py --lvae.
    predict: planes of any size by overlapping tiles, with microvae's own tile grid and blend
             window (microvae/inference/grid.py, loaded by path: pure numpy), the posterior
             mean at every level (careamics' ``mode_pred``), the likelihood's mean.
    check:   builds the model and runs two steps and a prediction on random data.

    python runner.py train --tiles t.npy --val v.npy --stats s.json --seconds 110 --out DIR
    python runner.py predict --model DIR --planes p.npz --out r.npz
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from careamics.config.architectures import LVAEConfig
from careamics.config.losses.loss_config import LVAELossConfig
from careamics.config.noise_model.likelihood_config import GaussianLikelihoodConfig
from careamics.losses import lvae_loss_factory
from careamics.models.lvae.likelihoods import likelihood_factory
from careamics.models.model_factory import model_factory

TILING = Path(__file__).resolve().parents[2] / "microvae" / "inference" / "grid.py"


def _tiling():
    spec = importlib.util.spec_from_file_location("microvae_tiling", TILING)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def build(shape: int | list[int], filters: int, z_dims: list[int]):
    """(model, likelihood, loss function, loss config) from careamics' factories, for tiles
    of side ``shape`` or of ``shape`` (depth, side, side): in 3D the levels halve Y and X
    only (strides 1, 2, 2; Z steps are coarse in the stacks it is run on)."""
    shape = [shape, shape] if isinstance(shape, int) else list(shape)
    strides = [2, 2] if len(shape) == 2 else [1, 2, 2]
    cfg = LVAEConfig(
        architecture="LVAE",
        input_shape=tuple(shape),
        z_dims=z_dims,
        encoder_n_filters=filters,
        decoder_n_filters=filters,
        predict_logvar="pixelwise",
        encoder_conv_strides=strides,
        decoder_conv_strides=strides,
    )
    model = model_factory(cfg)
    likelihood = likelihood_factory(GaussianLikelihoodConfig(predict_logvar="pixelwise"))
    loss_cfg = LVAELossConfig(loss_type="hdn")
    return model, likelihood, lvae_loss_factory("hdn"), loss_cfg


def _augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random rotations by 90 degrees and flips in XY (of planes or of volumes)."""
    out = np.empty_like(batch)
    for i, t in enumerate(batch):
        t = np.rot90(t, int(rng.integers(4)), axes=(-2, -1))
        out[i] = t[..., ::-1] if rng.random() < 0.5 else t
    return out


def _loss(model, likelihood, loss_fn, loss_cfg, x: torch.Tensor) -> torch.Tensor:
    out = loss_fn(model(x), x, loss_cfg, likelihood, None)
    if out is None:  # careamics returns None for a NaN loss
        return torch.tensor(float("nan"))
    return out["loss"]


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    stats = json.loads(Path(args.stats).read_text())
    mean, std = float(stats["mean"]), float(stats["std"])
    tiles = ((np.load(args.tiles).astype(np.float32)) - mean) / std
    val = torch.from_numpy(((np.load(args.val).astype(np.float32)) - mean) / std)[:, None]
    tile = list(tiles.shape[1:]) if tiles.ndim == 4 else tiles.shape[-1]
    model, likelihood, loss_fn, loss_cfg = build(tile, args.filters, args.z_dims)
    opt = torch.optim.Adam(model.parameters())
    best, best_state, history = math.inf, None, []
    step, t0 = 0, time.time()

    def validate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [
                float(_loss(model, likelihood, loss_fn, loss_cfg, val[i : i + args.batch]))
                for i in range(0, len(val), args.batch)
            ]
        model.train()
        return float(np.mean(losses))

    model.train()
    while time.time() - t0 < args.seconds:
        idx = rng.integers(len(tiles), size=args.batch)
        x = torch.from_numpy(_augment(tiles[idx], rng).copy())[:, None]
        loss = _loss(model, likelihood, loss_fn, loss_cfg, x)
        opt.zero_grad()
        if torch.isfinite(loss):
            loss.backward()
            opt.step()
        step += 1
        if step % args.val_every == 0:
            v = validate()
            history.append({"step": step, "val_loss": v, "seconds": time.time() - t0})
            if v < best:
                best, best_state = v, {k: t.clone() for k, t in model.state_dict().items()}
    seconds = time.time() - t0
    v = validate()
    history.append({"step": step, "val_loss": v, "seconds": seconds})
    if v < best or best_state is None:
        best, best_state = v, model.state_dict()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(best_state, out / "weights.pt")
    meta = {
        "careamics": __import__("careamics").__version__,
        "torch": torch.__version__,
        "tile": tile,
        "filters": args.filters,
        "z_dims": args.z_dims,
        "mean": mean,
        "std": std,
        "steps": step,
        "batch": args.batch,
        "train_seconds": round(seconds, 1),
        "best_val_loss": best,
        "validations": history,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({k: meta[k] for k in ("steps", "train_seconds", "best_val_loss")}))


def predict_planes(model, likelihood, planes, meta, overlap: int, batch: int) -> list:
    """Reconstructions (H, W) float32 of ``planes`` in their own units."""
    tiling = _tiling()
    tile, mean, std = meta["tile"], meta["mean"], meta["std"]
    model.eval()
    model.mode_pred = True  # the posterior mean at every level: a deterministic reconstruction
    window = tiling.blend_window(tile, overlap)
    outs = []
    for plane in planes:
        grid = tiling.TileGrid.plan(plane.shape, tile=tile, overlap=overlap, multiple=1)
        padded = (grid.pad_plane(plane.astype(np.float32)) - mean) / std
        acc = np.zeros(padded.shape, np.float64)
        wsum = np.zeros(padded.shape, np.float64)
        pos = grid.positions
        for i in range(0, len(pos), batch):
            chunk = pos[i : i + batch]
            x = np.stack([padded[y : y + tile, x0 : x0 + tile] for y, x0 in chunk])
            with torch.no_grad():
                out, _ = model(torch.from_numpy(x)[:, None])
                _, params = likelihood(out, None)
                rec = likelihood.mean(params["params"])[:, 0].numpy()
            for (y, x0), r in zip(chunk, rec):
                acc[y : y + tile, x0 : x0 + tile] += r * window
                wsum[y : y + tile, x0 : x0 + tile] += window
        outs.append((grid.crop(acc / wsum) * std + mean).astype(np.float32))
    return outs


def predict_volumes(model, likelihood, volumes, meta, overlap: int, batch: int) -> list:
    """Reconstructions (Z, H, W) float32 of ``volumes`` in their own units, by 3D tiles of
    the training tiles' shape: microvae's tile grid in XY, the same blend along Z (a volume
    thinner than a tile is padded by reflection)."""
    tiling = _tiling()
    (depth, tile), mean, std = meta["tile"][:2], meta["mean"], meta["std"]
    model.eval()
    model.mode_pred = True
    window = tiling.blend_window(tile, overlap)
    outs = []
    for volume in volumes:
        n = len(volume)
        grid = tiling.TileGrid.plan(volume.shape[1:], tile=tile, overlap=overlap, multiple=1)
        padded = np.stack([(grid.pad_plane(p.astype(np.float32)) - mean) / std for p in volume])
        if n < depth:  # reflect (repeating) to one tile's depth
            index = np.pad(np.arange(n), (0, depth - n), mode="symmetric" if n > 1 else "edge")
            padded = padded[index]
        oz = min(depth // 4, max(n - depth, 0))
        zstarts = tiling.plan_axis(len(padded), depth, max(1, depth - oz))
        wz = tiling.blend_profile(depth, oz)
        acc = np.zeros(padded.shape, np.float64)
        wsum = np.zeros(padded.shape, np.float64)
        where = [(z, y, x) for z in zstarts for y, x in grid.positions]
        for i in range(0, len(where), batch):
            chunk = where[i : i + batch]
            x = np.stack(
                [padded[z : z + depth, y : y + tile, x0 : x0 + tile] for z, y, x0 in chunk]
            )
            with torch.no_grad():
                out, _ = model(torch.from_numpy(x)[:, None])
                _, params = likelihood(out, None)
                rec = likelihood.mean(params["params"])[:, 0].numpy()
            w = wz[:, None, None] * window[None]
            for (z, y, x0), r in zip(chunk, rec):
                acc[z : z + depth, y : y + tile, x0 : x0 + tile] += r * w
                wsum[z : z + depth, y : y + tile, x0 : x0 + tile] += w
        full = (acc / wsum)[:n] * std + mean
        outs.append(np.stack([grid.crop(p) for p in full]).astype(np.float32))
    return outs


def predict(args: argparse.Namespace) -> None:
    meta = json.loads((Path(args.model) / "meta.json").read_text())
    model, likelihood, *_ = build(meta["tile"], meta["filters"], meta["z_dims"])
    model.load_state_dict(torch.load(Path(args.model) / "weights.pt", weights_only=True))
    data = np.load(args.planes)
    names = list(data.files)
    run = predict_volumes if isinstance(meta["tile"], list) else predict_planes
    recon = run(model, likelihood, [data[n] for n in names], meta, args.overlap, args.batch)
    np.savez(args.out, **dict(zip(names, recon)))


def check(args: argparse.Namespace) -> None:
    """Two training steps, a step's time and a prediction, on random data."""
    model, likelihood, loss_fn, loss_cfg = build(64, args.filters, args.z_dims)
    opt = torch.optim.Adam(model.parameters())
    x = torch.randn(args.batch, 1, 64, 64)
    times = []
    for _ in range(4):
        t0 = time.time()
        loss = _loss(model, likelihood, loss_fn, loss_cfg, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.time() - t0)
    meta = {"tile": 64, "mean": 0.0, "std": 1.0}
    (rec,) = predict_planes(model, likelihood, [np.random.rand(100, 90)], meta, 16, 8)
    assert rec.shape == (100, 90) and np.isfinite(rec).all()
    n = sum(p.numel() for p in model.parameters())
    print(f"ok: loss {float(loss):.3f}, {min(times[1:]):.3f} s/step, {n} parameters")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("train", "predict", "check"):
        p = sub.add_parser(name)
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--filters", type=int, default=32)
        p.add_argument("--z-dims", type=int, nargs="+", default=[32, 32, 32])
        p.add_argument("--threads", type=int, default=2)
        if name == "train":
            p.add_argument("--tiles", required=True)
            p.add_argument("--val", required=True)
            p.add_argument("--stats", required=True)
            p.add_argument("--seconds", type=float, required=True)
            p.add_argument("--val-every", type=int, default=200)
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--out", required=True)
        if name == "predict":
            p.add_argument("--model", required=True)
            p.add_argument("--planes", required=True)
            p.add_argument("--overlap", type=int, default=16)
            p.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"train": train, "predict": predict, "check": check}[args.cmd](args)


if __name__ == "__main__":
    main()
