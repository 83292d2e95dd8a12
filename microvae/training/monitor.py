"""Training seen from outside: events while a run goes on, and a stop request it obeys.

An application that trains in a thread (the napari plugin) passes ``on_event`` and ``stop`` to
:func:`microvae.train`. Events are plain data (numbers, a verdict, two small arrays), sent from
the training thread: the receiver hands them to its own thread. A set ``stop`` ends the run
after the current step, as if ``train.max_steps`` had been reached there: the steps since the
last validation are validated, ``checkpoints/last.ckpt`` and ``model.pt`` are written, and
``resume=True`` continues the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import lightning.pytorch as pl

from .events import StopFlag, TrainingEvent

__all__ = ["StopFlag", "TrainingEvent", "TrainingMonitor"]


class _Forward(logging.Handler):
    """The run's log records (from the training thread only) as message events."""

    def __init__(self, monitor: TrainingMonitor):
        super().__init__(logging.INFO)
        self.monitor = monitor
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.monitor.send("message", text=record.getMessage())


class TrainingMonitor(pl.Callback):
    """Sends :class:`TrainingEvent` to ``on_event``; sets ``trainer.should_stop`` when
    ``stop`` is set (checked after every step)."""

    def __init__(
        self,
        on_event: Callable[[TrainingEvent], None] | None,
        stop: StopFlag | None = None,
        every: int = 10,
    ):
        self.on_event, self.stop, self.every = on_event, stop, max(1, int(every))
        self.step, self.max_steps = 0, 0
        self.stopped_at: int | None = None
        self._handler: _Forward | None = None

    def send(self, kind: str, **kwargs) -> None:
        if self.on_event is not None:
            self.on_event(TrainingEvent(kind, self.step, self.max_steps, **kwargs))

    # -- the run's messages ------------------------------------------------------------------

    def attach(self) -> None:
        """Forward the ``microvae.training`` log of this thread as message events."""
        if self.on_event is not None and self._handler is None:
            self._handler = _Forward(self)
            logger = logging.getLogger("microvae.training")
            # the run's notes are INFO records: made while attached, whatever the level was
            self._level = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self._handler)

    def detach(self) -> None:
        if self._handler is not None:
            logger = logging.getLogger("microvae.training")
            logger.removeHandler(self._handler)
            logger.setLevel(self._level)
            self._handler = None

    # -- Lightning hooks -----------------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.step, self.max_steps = int(trainer.global_step), int(trainer.max_steps)
        self.send("start", values={"first_step": float(self.step)})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.step = int(trainer.global_step)
        last = getattr(pl_module, "last_train", None)
        if last and (self.step % self.every == 0 or self.step == self.max_steps):
            self.send("step", values=dict(last))
        if self.stop is not None and self.stop.is_set() and not trainer.should_stop:
            trainer.should_stop = True
            self.stopped_at = self.step
            self.send("stopped")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.step = int(trainer.global_step)
        val = getattr(pl_module, "last_val", None)
        if not val:
            return
        report = getattr(pl_module, "last_report", None) or {}
        self.send(
            "validation",
            values={k: float(v) for k, v in val.items()},
            verdict=report.get("verdict"),
            text=getattr(pl_module, "last_report_line", None),
            preview=getattr(pl_module, "last_preview", None),
        )
