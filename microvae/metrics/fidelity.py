"""Pixel fidelity and sharpness: PSNR, SSIM and scikit-image's blur effect.

Every function takes plain 2D arrays (any real dtype, in the image's own intensity units) and
states the data range it used: PSNR and SSIM depend on it, and "the reference's max - min" is
the convention here unless a range is passed (e.g. 4095 for 12-bit data). Where a metric is
undefined (a constant reference has no range; a plane narrower than 3 pixels has no SSIM
window) it is NaN, and the returned :class:`Metrics` says why in ``.notes``.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.measure import blur_effect
from skimage.metrics import structural_similarity

__all__ = [
    "Metrics",
    "psnr",
    "psnr_from_mse",
    "ssim",
    "blur",
    "data_range_of",
    "fidelity",
    "basic_metrics",
]

NO_RANGE = "the reference is constant: it has no data range, so PSNR and SSIM are undefined"


class Metrics(dict):
    """Metric values by name (a dict of floats), with ``notes``: why any of them is NaN."""

    def __init__(self, *args, notes: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes: list[str] = list(notes or [])


def data_range_of(reference: np.ndarray) -> float:
    """The default data range: ``reference.max() - reference.min()``; NaN for a constant
    reference, whose range is undefined (PSNR and SSIM then are too)."""
    rng = float(reference.max()) - float(reference.min())
    return rng if rng > 0 else float("nan")


def psnr_from_mse(mse: float, data_range: float) -> float:
    """10 log10(data_range**2 / mse) in dB: inf for mse 0, NaN for an undefined range."""
    if not data_range > 0:  # NaN or 0: no range to compare the error with
        return float("nan")
    return 10 * math.log10(data_range**2 / mse) if mse > 0 else float("inf")


def _check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.ndim != 2 or reference.shape != test.shape:
        raise ValueError(
            f"reference and test must be 2D arrays of one shape, got {reference.shape} and "
            f"{test.shape}"
        )


STRIP_ROWS = 256  # metrics work on strips of rows: memory stays a few strips, not many planes
SSIM_WINDOW = 7


def ssim_window(shape: tuple[int, int]) -> int:
    """The SSIM window side for a plane of ``shape``: 7, or the largest odd side that fits a
    smaller plane; 0 where none of at least 3 fits."""
    side = min(SSIM_WINDOW, min(shape))
    side -= 1 - side % 2
    return side if side >= 3 else 0


def _ssim_sum(ref: np.ndarray, tst: np.ndarray, rng: float, window: int) -> tuple[float, int]:
    """Sum and count of skimage's local SSIM map over the pixels its mean uses, by strips.

    skimage's mean SSIM crops (window - 1) / 2 pixels at every border; each strip is computed
    with that many rows of halo, so every counted value equals the whole-image one."""
    pad = (window - 1) // 2
    h = ref.shape[0]
    total, count = 0.0, 0
    for a in range(pad, h - pad, STRIP_ROWS):
        b = min(a + STRIP_ROWS, h - pad)
        lo, hi = max(a - pad, 0), min(b + pad, h)
        _, smap = structural_similarity(
            ref[lo:hi].astype(np.float64),
            tst[lo:hi].astype(np.float64),
            data_range=rng,
            win_size=window,
            full=True,
        )
        part = smap[a - lo : b - lo, pad : smap.shape[1] - pad]
        total += float(part.sum())
        count += part.size
    return total, count


def fidelity(
    reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None
) -> Metrics:
    """``data_range``, ``mse`` (intensity units squared), ``psnr_db`` and ``ssim`` (7x7
    window, scikit-image's; the largest odd window that fits a plane under 7 pixels) of
    ``test`` against ``reference``, both (H, W); ``data_range`` defaults to the reference's
    max - min. Computed by strips of rows, so memory does not grow with the plane beyond its
    own size. A constant reference without a given range, or a plane under 3 pixels wide,
    gives NaN for what is undefined, with the reason in ``.notes``."""
    _check_pair(reference, test)
    rng = data_range or data_range_of(reference)
    notes = [] if rng > 0 else [NO_RANGE]
    sq = 0.0
    for a in range(0, reference.shape[0], STRIP_ROWS):
        d = reference[a : a + STRIP_ROWS].astype(np.float64) - test[a : a + STRIP_ROWS]
        sq += float(np.sum(d * d))
    mse = sq / reference.size
    window = ssim_window(reference.shape)
    ssim = float("nan")
    if not window:
        notes.append(f"the plane {reference.shape} is under 3 pixels wide: no SSIM window fits")
    elif rng > 0:
        total, count = _ssim_sum(reference, test, rng, window)
        ssim = total / count
        if window < SSIM_WINDOW:
            notes.append(f"SSIM with a {window}x{window} window: the plane is {reference.shape}")
    return Metrics(
        {"data_range": rng, "mse": mse, "psnr_db": psnr_from_mse(mse, rng), "ssim": ssim},
        notes=notes,
    )


def psnr(reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range**2 / MSE); inf when identical,
    NaN for a constant reference without a given ``data_range``.

    Example:
        >>> a = np.zeros((8, 8)); b = a.copy(); b[0, 0] = 1
        >>> round(psnr(a, b, data_range=1.0), 2)  # MSE = 1/64
        18.06
    """
    return fidelity(reference, test, data_range=data_range)["psnr_db"]


def ssim(reference: np.ndarray, test: np.ndarray, *, data_range: float | None = None) -> float:
    """Mean structural similarity (scikit-image, 7x7 uniform window), in [-1, 1]; NaN where
    undefined (see :func:`fidelity`)."""
    return fidelity(reference, test, data_range=data_range)["ssim"]


def blur(image: np.ndarray) -> float:
    """scikit-image's ``blur_effect`` (Crete et al. 2007): 0 for a sharp image, 1 for a
    completely blurred one; compare it between images of the same content."""
    if image.ndim != 2:
        raise ValueError(f"blur expects a 2D image, got shape {image.shape}")
    return float(blur_effect(image.astype(np.float64)))


def basic_metrics(
    reference: np.ndarray,
    test: np.ndarray,
    *,
    pixel_size: float | None = None,
    unit: str | None = "um",
    data_range: float | None = None,
) -> Metrics:
    """:func:`fidelity` with the signature of a per-plane metric function (``pixel_size`` and
    ``unit`` are accepted and unused): what ``microvae predict --metrics basic`` writes."""
    return fidelity(reference, test, data_range=data_range)
