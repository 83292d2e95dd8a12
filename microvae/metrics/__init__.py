"""Does a reconstruction keep fine structure? Metrics of a reference and a reconstruction.

Each function takes 2D arrays in the image's own intensity units (any dtype) and states its
units: PSNR (dB) and SSIM with an explicit data range (:mod:`.fidelity`), Fourier ring
correlation and its 1/7 resolution in pixels and physical units (:mod:`.frc`), the
high-frequency power ratio in the reference's signal band (:mod:`.spectrum`), blur
(:func:`blur`), and MiNA-style network morphology with reconstruction / reference ratios
(:mod:`.morphology`), and without ground truth the error to the noise-free signal estimated by
binomial thinning (:func:`split_noise_error`, :mod:`.thinning`), and whether a predicted
spread is calibrated, with ground truth or by the same split (:mod:`.calibration`); and
whether generated images look like the data, by the distance between their morphology
statistics (:func:`realism`).
:func:`fine_structure_metrics` gathers the metrics against a reference in one flat dict, the
form ``microvae predict --metrics fine`` and ``microvae evaluate`` write to CSV.
"""

from __future__ import annotations

import numpy as np

from .axial import MIN_PLANES as AXIAL_MIN_PLANES
from .axial import axial_frc, axial_hf_ratio, axial_power_spectrum
from .calibration import (
    FRACTIONS,
    CalibrationCurve,
    SpreadFit,
    calibration_curve,
    extrapolate_slope,
    fit_spread,
    split_calibration,
    split_errors,
)
from .fidelity import (
    Metrics,
    basic_metrics,
    blur,
    data_range_of,
    fidelity,
    psnr,
    psnr_from_mse,
    ssim,
)
from .frc import FRC_THRESHOLD, FRCResult, frc
from .morphology import (
    MORPHOLOGY_FIELDS,
    Morphology,
    branch_labels,
    branch_lengths,
    morphology_ratios,
    network_morphology,
    network_threshold,
    skeleton_stats,
)
from .network3d import (
    NETWORK3D_FIELDS,
    Network3D,
    branch_labels_3d,
    network_3d,
    network_3d_ratios,
    network_threshold_3d,
    skeleton_3d,
)
from .presence import BranchPresence, Interval, branch_presence, structure_intervals
from .realism import Realism, RealismReference, realism, realism_reference
from .spectrum import HFRatio, hf_power_ratio, radial_power_spectrum, signal_band
from .thinning import (
    SPLIT_KEYS,
    CameraModel,
    SplitHalves,
    SplitNoiseError,
    estimate_camera,
    split_halves,
    split_noise_error,
    split_noise_values,
    thin,
)

__all__ = [
    "axial_frc",
    "axial_hf_ratio",
    "axial_power_spectrum",
    "CalibrationCurve",
    "calibration_curve",
    "split_calibration",
    "split_errors",
    "SpreadFit",
    "extrapolate_slope",
    "fit_spread",
    "FRACTIONS",
    "NETWORK3D_FIELDS",
    "Network3D",
    "branch_labels_3d",
    "network_3d",
    "network_3d_ratios",
    "network_threshold_3d",
    "CameraModel",
    "SplitHalves",
    "SplitNoiseError",
    "estimate_camera",
    "split_halves",
    "split_noise_error",
    "split_noise_values",
    "SPLIT_KEYS",
    "thin",
    "FRC_THRESHOLD",
    "FRCResult",
    "HFRatio",
    "MORPHOLOGY_FIELDS",
    "Metrics",
    "Morphology",
    "Realism",
    "PLANE_METRICS",
    "RealismReference",
    "basic_metrics",
    "blur",
    "branch_lengths",
    "branch_labels",
    "BranchPresence",
    "Interval",
    "branch_presence",
    "structure_intervals",
    "data_range_of",
    "fidelity",
    "fine_structure_metrics",
    "frc",
    "hf_power_ratio",
    "morphology_ratios",
    "network_morphology",
    "network_threshold",
    "psnr",
    "psnr_from_mse",
    "radial_power_spectrum",
    "realism",
    "realism_reference",
    "signal_band",
    "skeleton_3d",
    "skeleton_stats",
    "ssim",
    "volume_metrics",
]


def fine_structure_metrics(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    pixel_size: float | None = None,
    unit: str | None = "um",
    data_range: float | None = None,
    band: tuple[float, float] | None = None,
) -> Metrics:
    """Every metric of ``test`` against ``reference`` (2D, one shape), as one flat dict:

    ``data_range``, ``mse``, ``psnr_db``, ``ssim``; ``frc_resolution_px`` (and
    ``frc_resolution_<unit>`` with a pixel size); ``hf_ratio`` with its band ``hf_band_low``,
    ``hf_band_high`` (cycles/px); ``blur_reference``, ``blur_test``; the reference's network
    counts ``ref_<field>`` and the ratios ``ratio_<field>`` for every morphology field.
    Why any is NaN: ``.notes``.
    """
    out = fidelity(reference, test, data_range=data_range)
    unit = unit or "um"
    f = frc(reference, test, pixel_size=pixel_size, unit=unit)
    out["frc_resolution_px"] = f.resolution_px
    if f.resolution is not None:
        out[f"frc_resolution_{unit}"] = f.resolution
    hf = hf_power_ratio(reference, test, band=band)
    out.update(hf_ratio=hf.ratio, hf_band_low=hf.band[0], hf_band_high=hf.band[1])
    out["blur_reference"], out["blur_test"] = blur(reference), blur(test)
    ref, _, ratios = morphology_ratios(reference, test, pixel_size=pixel_size, unit=unit)
    for name in MORPHOLOGY_FIELDS:
        out[f"ref_{name}"] = float(getattr(ref, name))
    out.update({f"ratio_{k}": v for k, v in ratios.items()})
    return out


def volume_metrics(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    voxel: tuple[float, float, float] | None = None,
    unit: str | None = "um",
) -> dict[str, float]:
    """The 3D metrics of ``test`` against ``reference`` (volumes (Z, Y, X) of one shape), as
    one flat dict: ``net3d_<field>``, the 3D network's ratios test / reference for every
    :data:`NETWORK3D_FIELDS` at the reference's threshold (voxel (Z, Y, X) in ``unit``;
    None: one XY pixel, Z as deep); ``hf_ratio_z`` and ``frc_z_planes``, sharpness and
    resolution along Z (NaN for stacks under 8 planes)."""
    kw = {"unit": unit} if voxel is None else {"voxel": tuple(voxel), "unit": unit}
    _, _, ratios = network_3d_ratios(reference, test, **kw)
    out = {f"net3d_{k}": float(v) for k, v in ratios.items()}
    deep = len(reference) >= AXIAL_MIN_PLANES
    out["hf_ratio_z"] = axial_hf_ratio(reference, test).ratio if deep else float("nan")
    out["frc_z_planes"] = axial_frc(reference, test).resolution_px if deep else float("nan")
    return out


# the per-plane metric functions by the names ``microvae predict --metrics`` takes
PLANE_METRICS = {"basic": basic_metrics, "fine": fine_structure_metrics}
