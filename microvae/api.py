"""The Python API of microvae: train a model, load one."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import BatchSummary
from .batch import process_stacks as _process_stacks
from .config import RunConfig
from .errors import MicrovaeError
from .inference import MetricsFn, TrainedModel, load_model

if TYPE_CHECKING:  # Lightning is imported only for training
    from .training import StopFlag, TrainingEvent

__all__ = ["load_model", "process_stacks", "train"]


def train(
    config: str | os.PathLike | dict | RunConfig | None,
    data: str | os.PathLike | list[str | os.PathLike],
    out: str | os.PathLike,
    *,
    overrides: list[str] = (),
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_event: Callable[[TrainingEvent], None] | None = None,
    stop: StopFlag | None = None,
    event_every: int = 10,
) -> tuple[TrainedModel, Path]:
    """Train a VAE on TIFFs and return ``(trained model, run folder)``.

    Args:
        config: a preset's name (``"cpu"``, ``"mito2d"``: ``microvae configs`` lists them),
            a YAML path, a dict, a RunConfig, or None for the defaults.
        data: TIFF files, folders or glob patterns.
        out: the run folder (must not exist, unless ``resume`` or ``overwrite``).
        overrides: ``key.sub=value`` strings, as ``--set`` on the command line.
        on_event: called from the training thread with each
            :class:`~microvae.training.events.TrainingEvent`: a step's terms every
            ``event_every`` steps, each validation (numbers, collapse verdict, a preview
            tile), warnings, the start, a stop.
        stop: a :class:`threading.Event` (anything with ``is_set()``); once set, the run ends
            after the current step with checkpoints and ``model.pt`` written, and
            ``resume=True`` continues it.

    Example:
        >>> model, run = train("configs/demo.yaml", "data/*.tif", "runs/demo")  # doctest: +SKIP
        >>> model.reconstruct(image)  # doctest: +SKIP
    """
    # Lightning (and through it torchvision) only for training: loading a model in an
    # application that already runs Qt/OpenGL (napari) must not pull them in
    from .training import TrainingMonitor, fit

    monitor = None
    if on_event is not None or stop is not None:
        monitor = TrainingMonitor(on_event, stop, every=event_every)
    inputs = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    run_dir, _ = fit(
        config,
        inputs,
        out,
        overrides=list(overrides),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        monitor=monitor,
    )
    return load_model(run_dir / "model.pt"), run_dir


def process_stacks(
    model: TrainedModel,
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    metrics: str | MetricsFn | None = "basic",
    **kwargs: Any,
) -> BatchSummary:
    """Apply ``model`` to every TIFF in ``inputs`` (files, folders, globs) into ``out_dir``:
    :func:`microvae.batch.process_stacks`, with the per-plane ``metrics`` by name
    (``"basic"``: PSNR, SSIM and MSE against the input; ``"fine"``: also FRC, HF ratio, blur
    and morphology ratios; see :data:`microvae.metrics.PLANE_METRICS`), a function, or None.

    Example:
        >>> summary = process_stacks(model, "stacks/", "out/", metrics="fine")  # doctest: +SKIP
    """
    from .metrics import PLANE_METRICS

    if isinstance(metrics, str):
        if metrics not in PLANE_METRICS:
            raise MicrovaeError(
                f"unknown metrics {metrics!r}; choose from {', '.join(PLANE_METRICS)}"
            )
        metrics = PLANE_METRICS[metrics]
    return _process_stacks(model, inputs, out_dir, metrics=metrics, **kwargs)
