"""The Python API of microvae: train a model, load one."""

from __future__ import annotations

import os
from pathlib import Path

from .batch import process_stacks
from .inference import TrainedModel, load_model
from .training.config import RunConfig

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
) -> tuple[TrainedModel, Path]:
    """Train a VAE on TIFFs and return ``(trained model, run folder)``.

    Args:
        config: a YAML path (e.g. ``configs/mito2d.yaml``), a dict, a RunConfig, or None for
            the defaults.
        data: TIFF files, folders or glob patterns.
        out: the run folder (must not exist, unless ``resume`` or ``overwrite``).
        overrides: ``key.sub=value`` strings, as ``--set`` on the command line.

    Example:
        >>> model, run = train("configs/demo.yaml", "data/*.tif", "runs/demo")  # doctest: +SKIP
        >>> model.reconstruct_plane(image)  # doctest: +SKIP
    """
    # Lightning (and through it torchvision) only for training: loading a model in an
    # application that already runs Qt/OpenGL (napari) must not pull them in
    from .training.fit import fit

    inputs = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    run_dir, _ = fit(
        config,
        inputs,
        out,
        overrides=list(overrides),
        resume=resume,
        overwrite=overwrite,
        progress=progress,
    )
    return load_model(run_dir / "model.pt"), run_dir
