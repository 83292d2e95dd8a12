"""``microvae calibrate``: the scale of a model's posterior spread, fitted on images.

Without ground truth, and stored in the model file.

A model's posterior draws (:meth:`microvae.inference.TrainedModel.posterior`) may spread too
little or too much. :func:`microvae.metrics.fit_spread` measures by how much, by the noise
split at three fractions of the dose (0.25, 0.35, 0.5) extrapolated to the full dose, on
images the user gives (their own data: the calibration holds for data like them). The
square root of that slope is stored in the model file; from then on the model's ``std`` and
quantiles are widened by it (``calibrated=False`` gives the model's own). A second split with
another seed, scored with the scale applied, says how well it holds ("after"): its slope
should be 1 within its standard error.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import check_changeable, write_calibration
from ..data import find_images
from ..errors import MicrovaeError
from ..inference import TrainedModel
from ..io import open_image
from ..metrics import FRACTIONS, SpreadFit, estimate_camera, fit_spread

__all__ = ["CalibrationReport", "calibrate", "calibrate_arrays", "calibration_images"]


@dataclass(frozen=True)
class CalibrationReport:
    """What :func:`calibrate` measured: the fit on the model's own spread (``before``), the
    same check on a fresh split with the fitted scale applied (``after``), and what went into
    the model file (``stored``, None for a dry run)."""

    before: SpreadFit
    after: SpreadFit
    images: list[str]
    samples: int
    seconds: float
    stored: dict | None

    @property
    def scale(self) -> float:
        return self.before.scale


def calibration_images(
    model: TrainedModel,
    inputs: list[str | Path],
    *,
    planes: int = 4,
    channel: int | None = None,
    axes: str | None = None,
) -> tuple[list[np.ndarray], list[str]]:
    """The images a calibration runs on: for a 2D model the ``planes`` planes of each file
    with the most signal (the highest variance; read one at a time), for a 3D model each
    file's first (Z, Y, X) volume. Returns the arrays and a name for each."""
    images, names = [], []
    for path in find_images(inputs):
        with open_image(path, channel=channel, axes=axes) as rec:
            if model.dims == 3:
                index, volume = next(rec.iter_volumes())
                images.append(volume)
                names.append(f"{path.name}{list(index) if index else ''}")
                continue
            best = heapq.nlargest(
                planes,
                ((float(np.var(p)), i, p) for i, (_, p) in enumerate(rec.iter_planes())),
                key=lambda t: (t[0], -t[1]),
            )
            for _, i, plane in sorted(best, key=lambda t: t[1]):
                images.append(plane)
                names.append(f"{path.name}[plane {i}]" if rec.n_planes > 1 else path.name)
    return images, names


def calibrate(
    model: TrainedModel,
    inputs: list[str | Path],
    *,
    samples: int = 16,
    planes: int = 4,
    channel: int | None = None,
    axes: str | None = None,
    seed: int = 0,
    store: bool = True,
    **options,
) -> CalibrationReport:
    """Fit the model's spread scale on ``inputs`` (files, folders, globs; read by
    :func:`calibration_images` with ``planes``, ``channel``, ``axes``) and, with ``store``,
    write it into its model file (``model.path``); see :func:`calibrate_arrays`."""
    _require_spread(model)
    images, names = calibration_images(model, inputs, planes=planes, channel=channel, axes=axes)
    return calibrate_arrays(
        model, images, names, samples=samples, seed=seed, store=store, **options
    )


def calibrate_arrays(
    model: TrainedModel,
    images: list[np.ndarray],
    names: list[str],
    *,
    samples: int = 16,
    seed: int = 0,
    store: bool = True,
    **options,
) -> CalibrationReport:
    """Fit the model's spread scale on ``images`` (2D planes, or (Z, Y, X) volumes for a 3D
    model) and, with ``store``, write it into its model file (``model.path``).

    Args:
        model: a generative model loaded from a model file.
        images: like those the model will be used on, with their noise (raw camera or
            photon-count data, not denoised or rescaled); ``names`` name them in errors.
        samples: posterior draws per tile.
        seed: of the draws and of the splits (the "after" check uses seed + 1).
        **options: fields of :class:`~microvae.inference.TileOptions` (tile_size, ...).

    Raises:
        MicrovaeError: no model file to store into, images whose noise cannot be measured
            (the image named, nothing stored), or split estimates too noisy to fit.
    """
    _require_spread(model)
    if store and model.path is None:
        raise MicrovaeError("calibrate: the model was not loaded from a file; nothing to store in")
    if store:
        check_changeable(model.path)  # before the work, not after it
    _check_noise(images, names)
    t0 = time.perf_counter()
    before = _fit(model, images, samples, seed, 1.0, options)
    after = _fit(model, images, samples, seed + 1, before.scale, options)
    seconds = time.perf_counter() - t0
    stored = None
    if store:
        stored = {
            "scale": before.scale,
            "method": "noise split at fractions "
            f"{', '.join(f'{f:g}' for f in FRACTIONS)} of the dose, extrapolated to full dose",
            "before": before.to_dict(),
            "after": after.to_dict(),
            "images": names,
            "samples": samples,
            "seed": seed,
            "date": time.strftime("%Y-%m-%d"),
        }
        write_calibration(model.path, stored)
        model.calibration = stored
    return CalibrationReport(before, after, names, samples, seconds, stored)


def _require_spread(model: TrainedModel) -> None:
    if not model.vae.can_generate:
        name = model.path.name if model.path is not None else "the model"
        raise MicrovaeError(
            f"{name}: skip_mode '{model.config.model.skip_mode}' has no posterior spread to "
            "calibrate (its skips hand the input's features to the decoder); use a ladder model"
        )


def _check_noise(images: list[np.ndarray], names: list[str]) -> None:
    """Refuse, naming the image, where its noise cannot be measured (what the split needs)."""
    for image, name in zip(images, names):
        try:
            estimate_camera(list(image) if image.ndim == 3 else image)
        except ValueError as exc:
            raise MicrovaeError(
                f"{name}: no noise to calibrate on ({exc}); calibrate needs raw images (camera "
                "ADU or photon counts, not denoised or rescaled); nothing was stored"
            ) from None


def _fit(model, images, samples, seed, scale, options) -> SpreadFit:
    """fit_spread over ``images`` with the model's own spread times ``scale``; a failure
    names the image and stores nothing."""

    def posterior(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        axes = "ZYX" if x.ndim == 3 else "YX"
        p = model.posterior(x, axes, samples=samples, seed=seed, calibrated=False, **options)
        return p.mmse, p.std * scale

    try:
        return fit_spread(images, posterior, seed=seed)
    except ValueError as exc:
        raise MicrovaeError(f"calibrate: {exc}; nothing was stored") from None
