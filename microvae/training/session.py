"""A training run: run folder, data, Lightning Trainer, checkpoints, logs and model.pt.

RUN_DIR holds ``config.yaml`` (the resolved config), ``run.json`` (normalisation and data
summary), ``checkpoints/last.ckpt`` (every ``train.checkpoint_every`` steps, at the end and on
Ctrl-C or SIGTERM) and ``best.ckpt`` (lowest validation bits/dim), ``logs/metrics.csv``,
``tensorboard/``, ``previews/step_*.png``, ``diagnostics.json`` and, at the end, ``model.pt``:
the weights of the best validation (the last step is validated too), not merely the last.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from pydantic import ValidationError
from torch.utils.data import DataLoader

from ..config import ConfigError, RunConfig, load_config, save_config, save_model_file
from ..data import Normalisation, prepare_data
from ..errors import MicrovaeError
from ..io import atomic_path
from ..model import z_strides_for
from .checkpoints import AtomicCheckpointIO, SaveOnInterrupt
from .module import VAEModule
from .monitor import TrainingMonitor
from .prior_fit import aggregate_top_prior
from .progress import progress_bar

__all__ = ["RunDirError", "fit"]

_log = logging.getLogger("microvae.training")


class RunDirError(MicrovaeError, ValueError):
    """The run folder cannot be used (exists, or has nothing to resume)."""


def _precision(cfg: RunConfig) -> str:
    p = cfg.train.precision
    if p != "auto":
        return "32-true" if p == "32" else p
    gpu = cfg.train.accelerator in ("auto", "cuda", "gpu") and torch.cuda.is_available()
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


def _resume_config(run_dir: Path, config, overrides) -> RunConfig:
    saved = load_config(run_dir / "config.yaml")
    if config is not None:
        given = load_config(config)
        differs = [
            s
            for s in ("data", "model", "likelihood", "objective")
            if getattr(given, s) != getattr(saved, s)
        ]
        if differs:
            raise RunDirError(
                f"{run_dir}: --resume continues the run with its saved config.yaml, but the "
                f"given config differs in {', '.join(differs)}; use --overwrite to start again"
            )
    bad = [o for o in overrides if not o.startswith("train.")]
    if bad:
        raise RunDirError(
            f"--resume accepts --set for train.* only (e.g. train.max_steps), not {bad[0]}"
        )
    return load_config(saved, list(overrides))


def _ddp_child() -> bool:
    """Whether this process is a DDP rank other than the first (started by Lightning's
    launcher, torchrun or SLURM, which set these variables)."""
    return any(int(os.environ.get(v, "0") or 0) != 0 for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def _ranks(trainer: pl.Trainer, module: VAEModule) -> dict:
    """How many processes trained, and whether their weights ended identical."""
    digests = getattr(module, "rank_digests", None) or []
    world = int(trainer.world_size)
    return {
        "world_size": world,
        # one digest from every rank, all equal
        "identical_weights": len(digests) == world and all(d == digests[0] for d in digests),
    }


def _prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (run_dir / "checkpoints" / "last.ckpt").is_file():
            raise RunDirError(
                f"{run_dir}: nothing to resume (no checkpoints/last.ckpt); "
                "start a new run without --resume"
            )
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: exists and is not a folder; choose another --out")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise RunDirError(
                f"{run_dir}: run folder exists; pass --resume to continue it or "
                "--overwrite to start again"
            )
        if not (run_dir / "config.yaml").is_file():
            raise RunDirError(
                f"{run_dir}: exists and is not a microvae run folder (no "
                "config.yaml), so --overwrite will not delete it; choose another --out"
            )
        shutil.rmtree(run_dir)


class _SigtermAsInterrupt:
    """Within the block, SIGTERM (a kill) interrupts like Ctrl-C, so last.ckpt is saved."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():

            def handler(signum, frame):
                raise KeyboardInterrupt("SIGTERM")

            self.previous = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


@contextlib.contextmanager
def _quiet_lightning():
    """Lightning's banners (accelerator lines, tips) and a warning that does not apply: our
    checkpoints are meant to hold the weights after each update."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*manual optimization and every_n_train_steps")
        warnings.filterwarnings("ignore", message=".*LeafSpec.* is deprecated")
        # on --resume: the tile sequence continues at the checkpoint's step (first_tile) and
        # checkpoints/ is meant to hold the earlier checkpoints
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable")
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
        try:
            yield
        finally:
            logger.setLevel(level)


def _eval_weights(path: Path, *, ema: bool) -> dict[str, torch.Tensor]:
    """The weights a checkpoint validated (its EMA when enabled), as a VAE state dict."""
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "ema.module." if ema else "vae."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _saved_weights(module: VAEModule, run_dir: Path, step: int) -> dict:
    """What model.pt holds: the best validated weights, and why (said in the log too)."""
    watch = module.val_watch
    if module.best_state is None or watch.best is None:
        _log.warning(
            "no validation was run, so model.pt holds the weights of the last step (%d)", step
        )
        info = {"weights": "last", "step": step, "reason": "no validation was run"}
        return {"state_dict": module.eval_model.state_dict(), "info": info}
    last_step, last_bpd = watch.history[-1]
    info = {
        "weights": "best",
        "step": watch.best_step,
        "val_bits_per_dim": watch.best,
        "last_step": last_step,
        "last_val_bits_per_dim": last_bpd,
    }
    if watch.best_step != last_step:
        _log.warning(
            "model.pt holds the best weights, from step %d (validation %.4f bits/dim), not "
            "the last (step %d: %.4f); %s has the last",
            watch.best_step,
            watch.best,
            last_step,
            last_bpd,
            run_dir / "checkpoints" / "last.ckpt",
        )
    return {"state_dict": module.best_state, "info": info}


def fit(
    config: str | os.PathLike | dict | RunConfig | None,
    data: list[str | os.PathLike],
    out: str | os.PathLike,
    *,
    overrides: list[str] = (),
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: list[pl.Callback] = (),
    monitor: TrainingMonitor | None = None,
) -> tuple[Path, dict]:
    """Train; returns (run folder, summary). ``model.pt`` is written at the end.

    ``monitor`` receives the run's events and may stop it early (see
    :mod:`microvae.training.monitor`); the summary's ``stopped_at`` says where.

    Raises:
        ConfigError, DataError, RunDirError, NonFiniteError: bad config, data, run folder, or
            a run whose updates kept being non-finite.
        KeyboardInterrupt: on Ctrl-C or SIGTERM, after saving checkpoints/last.ckpt.
    """
    run_dir = Path(out)
    # Lightning's DDP launcher starts the other ranks by running the same command again:
    # only the first process checks, creates and writes the run folder
    child = _ddp_child()
    if not child:
        _prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    cfg = _resume_config(run_dir, config, overrides) if resume else load_config(config, overrides)
    stored, done = _resume_state(run_dir, cfg) if resume else (None, 0)
    prepared, cfg = _prepare(data, cfg, run_dir, stored, done, write=not child)
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    module = VAEModule(cfg.to_dict(), prepared.normalisation.to_dict(), run_dir=str(run_dir))
    if resume and (run_dir / "checkpoints" / "best.ckpt").is_file():
        module.best_state = _eval_weights(run_dir / "checkpoints" / "best.ckpt", ema=cfg.train.ema)
    trainer, interrupt = _trainer(
        cfg, run_dir, done, progress, [*filter(None, [monitor]), *callbacks]
    )
    return _train(trainer, module, interrupt, monitor, cfg, prepared, run_dir, resume)


def _resume_state(run_dir: Path, cfg: RunConfig) -> tuple[Normalisation, int]:
    """A run to continue: its normalisation, and the step its last checkpoint reached."""
    stored = Normalisation.from_dict(
        json.loads((run_dir / "run.json").read_text())["normalisation"]
    )
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    done = int(ckpt["global_step"])
    if done >= cfg.train.max_steps:
        raise RunDirError(
            f"{run_dir}: the run already reached step {done} of train.max_steps = "
            f"{cfg.train.max_steps}; raise it with --set train.max_steps=N to train longer"
        )
    return stored, done


def _prepare(data, cfg: RunConfig, run_dir: Path, stored, done: int, *, write: bool):
    """The datasets for the steps still to run, and the config (a 3D model's ``z_strides``
    chosen from the data's voxel where the config leaves them open); with ``write``,
    config.yaml and run.json."""
    t = cfg.train
    prepared = prepare_data(
        data,
        cfg.data,
        n_train_tiles=(t.max_steps - done) * t.batch_size,
        seed=t.seed,
        normalisation=stored,
        first_tile=done * t.batch_size,
        dims=cfg.model.dims,
    )
    if cfg.model.dims == 3 and cfg.model.z_strides is None:
        cfg = _with_z_strides(cfg, prepared.summary.get("z_over_xy"))
    if write:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        run_info = {"normalisation": prepared.normalisation.to_dict(), "data": prepared.summary}
        with atomic_path(run_dir / "run.json") as tmp:
            tmp.write_text(json.dumps(run_info, indent=2) + "\n")
    _log.info(
        "data: %d training %s, %d validation tiles; split %s; bit depth %s",
        prepared.summary["train_planes"],
        "volumes" if cfg.model.dims == 3 else "planes",
        prepared.summary["val_tiles"],
        prepared.summary["split"],
        prepared.normalisation.bit_depth,
    )
    return prepared, cfg


def _with_z_strides(cfg: RunConfig, z_over_xy: float | None) -> RunConfig:
    """``cfg`` with the 3D model's Z strides chosen for voxels ``z_over_xy`` deep."""
    if z_over_xy is None:
        raise ConfigError(
            "the training files do not say their voxel size (Z step and pixel size); a 3D "
            "model needs it to know at which levels Z halves: set data.z_over_xy (the Z step "
            "over the pixel size, e.g. 0.2 / 0.065) or model.z_strides"
        )
    d = cfg.to_dict()
    d["model"]["z_strides"] = z_strides_for(cfg.model.levels, z_over_xy)
    _log.info(
        "3D: voxels %.2f times as deep as wide; Z halves at levels %s",
        z_over_xy,
        [lv + 1 for lv, s in enumerate(d["model"]["z_strides"]) if s == 2],
    )
    try:
        return RunConfig.model_validate(d)
    except ValidationError as exc:
        why = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(
            f"Z strides {d['model']['z_strides']} for voxels {z_over_xy:.2f} times as deep as "
            f"wide: {why}"
        ) from None


def _trainer(
    cfg: RunConfig, run_dir: Path, done: int, progress: bool, callbacks: list
) -> tuple[pl.Trainer, SaveOnInterrupt]:
    """The Lightning Trainer: checkpoints (last and best), CSV and TensorBoard logs, a save
    on interruption, the progress bar and ``callbacks``."""
    t = cfg.train
    ckpt_dir = run_dir / "checkpoints"
    interrupt = SaveOnInterrupt(ckpt_dir / "last.ckpt")
    with _quiet_lightning():
        trainer = pl.Trainer(
            max_steps=t.max_steps,
            accelerator=t.accelerator,
            devices=t.devices,
            strategy=t.strategy,
            precision=_precision(cfg),
            val_check_interval=min(t.val_every, t.max_steps),
            check_val_every_n_epoch=None,
            log_every_n_steps=min(50, t.val_every),
            num_sanity_val_steps=0,
            enable_model_summary=False,
            enable_progress_bar=progress,
            default_root_dir=run_dir,
            plugins=[AtomicCheckpointIO()],
            logger=_loggers(run_dir, done),
            callbacks=[
                *_checkpoints(ckpt_dir, t),
                interrupt,
                *([progress_bar()] if progress else []),
                *callbacks,
            ],
        )
        _log.info(
            "training on %s, precision %s, %d steps of %d tiles of %s",
            trainer.strategy.root_device,
            _precision(cfg),
            t.max_steps,
            t.batch_size,
            "x".join(map(str, cfg.model.tile_shape())),
        )
    return trainer, interrupt


def _loggers(run_dir: Path, done: int) -> list:
    """CSV and TensorBoard logs under ``run_dir``."""
    return [
        # a resumed session logs beside the first: Lightning's CSV logger would otherwise
        # replace the earlier metrics.csv
        CSVLogger(run_dir, name="logs", version=f"resumed-at-step-{done}" if done else ""),
        TensorBoardLogger(run_dir, name="tensorboard", version=""),
    ]


def _checkpoints(ckpt_dir: Path, t) -> list:
    """``last.ckpt`` every ``checkpoint_every`` steps, and ``best.ckpt`` by validation
    bits/dim."""
    return [
        ModelCheckpoint(
            dirpath=ckpt_dir,
            save_last=True,
            save_top_k=0,
            every_n_train_steps=min(t.checkpoint_every, t.max_steps),
        ),
        ModelCheckpoint(
            dirpath=ckpt_dir,
            filename="best",
            monitor="val/bits_per_dim",
            mode="min",
            save_top_k=1,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
    ]


def _train(trainer, module, interrupt, monitor, cfg, prepared, run_dir, resume):
    """Fit (from the last checkpoint when resuming), then finish: Ctrl-C or SIGTERM saves
    last.ckpt and says how to continue."""
    t = cfg.train
    workers = cfg.data.num_workers
    train_loader = DataLoader(
        prepared.train,
        batch_size=t.batch_size,
        shuffle=False,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    val_loader = DataLoader(prepared.val, batch_size=t.batch_size, shuffle=False, num_workers=0)
    last = run_dir / "checkpoints" / "last.ckpt"
    started = time.time()
    if monitor is not None:
        monitor.attach()
    try:
        with _SigtermAsInterrupt(), _quiet_lightning():
            try:
                trainer.fit(module, train_loader, val_loader, ckpt_path=last if resume else None)
            except SystemExit:
                if trainer.interrupted:  # Lightning turns Ctrl-C into SystemExit(1)
                    step = interrupt.saved_step or trainer.global_step
                    raise KeyboardInterrupt(
                        f"training interrupted at step {step}; {last} is saved: continue with "
                        "--resume"
                    ) from None
                raise
        return _finish(trainer, module, monitor, cfg, prepared, val_loader, run_dir, started)
    finally:
        if monitor is not None:
            monitor.detach()


def _finish(
    trainer, module, monitor, cfg, prepared, val_loader, run_dir, started
) -> tuple[Path, dict]:
    """After fitting: the last steps validated, last.ckpt and model.pt written."""
    t = cfg.train
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    if module.val_watch.history and module.val_watch.history[-1][0] != trainer.global_step:
        # the steps after the last validation are judged too, so that the best weights
        # are chosen among all
        with _quiet_lightning():
            trainer.validate(module, val_loader, verbose=False)
        if module.val_watch.best_step == trainer.global_step:
            # Lightning's best.ckpt is only written in fitting: keep it the best, for --resume
            trainer.save_checkpoint(ckpt_dir / "best.ckpt", weights_only=False)
    # the finished state, with the optimizer, so that --resume can extend the run
    trainer.save_checkpoint(last, weights_only=False)
    saved = _saved_weights(module, run_dir, trainer.global_step)
    summary = {
        "steps": int(trainer.global_step),
        "seconds": round(time.time() - started, 1),
        "device": str(module.device),
        "precision": _precision(cfg),
        "skipped_updates": module.guard.skipped,
        # of the weights model.pt holds (the best validation's)
        "validation": module.best_val or module.last_val,
        "collapse": module.best_report or module.last_report,
        "data": prepared.summary,
        "ema": t.ema,
        "saved": saved["info"],
        "processes": _ranks(trainer, module),
        "rank": int(trainer.global_rank),
        # a stop request (TrainingMonitor) ended the run before train.max_steps
        "stopped_at": None if monitor is None else monitor.stopped_at,
    }
    if trainer.is_global_zero:
        top = aggregate_top_prior(module.eval_model, saved["state_dict"], prepared.train)
        save_model_file(
            run_dir / "model.pt",
            state_dict=saved["state_dict"],
            config=cfg.to_dict(),
            normalisation=prepared.normalisation.to_dict(),
            summary=summary,
            top_prior=None if top is None else top.to_dict(),
        )
    return run_dir, summary
