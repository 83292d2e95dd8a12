"""How sure of each structure, for one plane: a model's posterior draws, measured.

Their MMSE and spread, the network statistics' intervals and each branch's presence.

The napari widgets and ``evaluate`` ask this of a model and a plane; the measures themselves
are :mod:`microvae.metrics.presence`'s.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..inference import TrainedModel, result_of
from ..metrics import (
    BranchPresence,
    Interval,
    branch_presence,
    network_threshold,
    network_threshold_3d,
)
from ..metrics import structure_intervals as _intervals

__all__ = ["StructureUncertainty", "structure_uncertainty", "structure_uncertainty_steps"]


@dataclass(frozen=True)
class StructureUncertainty:
    """``mmse`` float32, the draws' mean; ``std`` float32, their standard deviation (the
    spread of the draws these statistics come from: widened by ``scale``), both the input's
    shape (a plane, or a 3D model's volume) in its units; ``intervals``: per network
    statistic, the MMSE's value over the input's with the draws' central interval;
    ``presence``: the MMSE skeleton's branches and the fraction of draws holding each (a
    volume's in 3D); ``samples``: draws; ``scale``: the calibrated spread's
    scale each draw's distance from the MMSE was widened by (1: the draws' own)."""

    mmse: np.ndarray
    std: np.ndarray
    intervals: dict[str, Interval]
    presence: BranchPresence
    samples: int
    scale: float = 1.0


def structure_uncertainty(
    model: TrainedModel,
    plane: np.ndarray,
    *,
    samples: int = 16,
    seed: int = 0,
    level: float = 0.9,
    tolerance: float = 2.0,
    voxel: tuple[float, float, float] | None = None,
    calibrated: bool = True,
    **options,
) -> StructureUncertainty:
    """``samples`` posterior draws of a 2D ``plane`` (or, for a 3D model, a (Z, Y, X) volume;
    kept: ``samples`` copies in float32), measured as the input is: the network at the
    input's own threshold (Otsu of the lightly smoothed input), intervals at ``level``,
    branches present within ``tolerance`` (XY) pixels. ``voxel``: a volume's (Z, Y, X)
    sizes for its 3D network (default 1). ``calibrated``: a model calibrated by ``microvae
    calibrate`` widens each draw's distance from the MMSE by its spread's scale, so that the
    draws spread as the calibrated std says (False: the draws' own). ``options``: fields of
    :class:`~microvae.inference.TileOptions`."""
    return result_of(
        structure_uncertainty_steps(
            model,
            plane,
            samples=samples,
            seed=seed,
            level=level,
            tolerance=tolerance,
            voxel=voxel,
            calibrated=calibrated,
            **options,
        )
    )


def structure_uncertainty_steps(
    model: TrainedModel,
    plane: np.ndarray,
    *,
    samples: int = 16,
    seed: int = 0,
    level: float = 0.9,
    tolerance: float = 2.0,
    voxel: tuple[float, float, float] | None = None,
    calibrated: bool = True,
    **options,
) -> Generator[tuple[int, int], None, StructureUncertainty]:
    """:func:`structure_uncertainty` step by step: yields (draws done, ``samples``) after
    each draw (a worker shows progress and can stop between draws); returns the result."""
    plane = np.asarray(plane)
    if plane.ndim != model.dims:
        what = "a 2D plane" if model.dims == 2 else "a (Z, Y, X) volume (a 3D model)"
        raise ValueError(f"structure_uncertainty: expected {what}, got shape {plane.shape}")
    if samples < 2:
        raise ValueError(f"structure_uncertainty needs samples >= 2, got {samples}")
    axes = "YX" if plane.ndim == 2 else "ZYX"
    draws = np.empty((samples, *plane.shape), np.float32)
    for k, draw in enumerate(model.draws(plane, axes, samples=samples, seed=seed, **options)):
        draws[k] = draw
        yield k + 1, samples
    mmse = draws.mean(0)
    scale = model.spread_scale if calibrated else 1.0
    if scale != 1.0:  # in place: the draws are the largest thing held
        draws -= mmse
        draws *= scale
        draws += mmse
    std = draws.std(0, ddof=1)
    if plane.ndim == 3:
        voxel = voxel or (1.0, 1.0, 1.0)
        threshold = network_threshold_3d(plane, voxel=voxel)
    else:
        threshold = network_threshold(plane)
    opts = {"threshold": threshold, "voxel": voxel}
    intervals = _intervals(plane, mmse, draws, level=level, **opts)
    presence = branch_presence(mmse, draws, tolerance=tolerance, **opts)
    return StructureUncertainty(mmse, std, intervals, presence, samples, scale)
