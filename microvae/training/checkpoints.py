"""Checkpoints that survive interruption: atomic writes, and a save on Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..io import atomic_path

__all__ = ["AtomicCheckpointIO", "SaveOnInterrupt"]

_log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint under a temporary name and renames it: a kill during the write
    leaves the previous checkpoint intact."""

    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | os.PathLike,
        storage_options: Any | None = None,
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class SaveOnInterrupt(pl.Callback):
    """On Ctrl-C (or SIGTERM, turned into one by ``fit``) save ``last.ckpt`` before exiting."""

    def __init__(self, path: Path):
        self.path = path
        self.saved_step: int | None = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.global_step > 0:
            trainer.save_checkpoint(self.path, weights_only=False)
            self.saved_step = trainer.global_step
            _log.warning("interrupted at step %d; saved %s", trainer.global_step, self.path)
