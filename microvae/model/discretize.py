"""Integer intensity levels and the log-space bin masses of discretised distributions.

Data of bit depth ``b`` hold integer levels ``k`` in ``[0, 2**b - 1]``; the model sees them as
``x = 2 k / (2**b - 1) - 1`` in ``[-1, 1]``, one bin of width ``2 / (2**b - 1)`` per level. The
probability of a level is the distribution's mass over its bin; the two edge bins (picked by
integer level, never by a float threshold) extend to -inf and +inf, so the masses of all levels
sum to 1. Masses are computed in log space from whichever tail is more precise, which keeps
them exact at 16 bits where bins are 3e-5 wide.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "bin_width",
    "to_unit",
    "to_levels",
    "quantise_unit",
    "log1mexp",
    "log_discrete_mass",
    "LN2",
]

LN2 = math.log(2.0)
_TINY = 1e-12  # keeps log(1 - exp(0)) finite: a bin's mass relative to its tail is >= 1e-12


def n_levels(bit_depth: int) -> int:
    if not 1 <= bit_depth <= 16:
        raise ValueError(f"bit_depth must be 1..16, got {bit_depth}")
    return 2**bit_depth


def bin_width(bit_depth: int) -> float:
    """Width of one level's bin in [-1, 1] units: 2 / (2**b - 1)."""
    return 2.0 / (n_levels(bit_depth) - 1)


def to_unit(levels: Tensor, bit_depth: int) -> Tensor:
    """Integer levels (any dtype) -> float32 values in [-1, 1]."""
    return levels.float() * bin_width(bit_depth) - 1.0


def to_levels(x: Tensor, bit_depth: int) -> Tensor:
    """Values in [-1, 1] -> nearest integer level (int64), clamped to [0, 2**b - 1]."""
    k = torch.round((x + 1.0) / bin_width(bit_depth))
    return k.clamp(0, n_levels(bit_depth) - 1).long()


def quantise_unit(x: Tensor, bit_depth: int) -> Tensor:
    """Values snapped to the nearest level's centre, in [-1, 1]."""
    return to_unit(to_levels(x, bit_depth), bit_depth)


def log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x <= 0, accurate near 0 and far below (Maechler 2012).

    Each branch sees only inputs of its own range, so no inf or NaN reaches the gradient.
    """
    x = x.clamp(max=-_TINY)
    near = torch.log(-torch.expm1(x.clamp(min=-LN2)))
    far = torch.log1p(-torch.exp(x.clamp(max=-LN2)))
    return torch.where(x > -LN2, near, far)


LogCdf = Callable[[Tensor], Tensor]


def log_discrete_mass(
    log_cdf: LogCdf, x: Tensor, loc: Tensor, scale: Tensor, bit_depth: int
) -> Tensor:
    """log P(level of x) for a location-scale family with a symmetric standard distribution.

    Args:
        log_cdf: log of the standard distribution's CDF (its survival function is
            ``log_cdf(-z)`` by symmetry).
        x: data in [-1, 1] on the level grid, broadcastable with ``loc`` and ``scale``.
        loc, scale: the distribution's location and scale (> 0), in [-1, 1] units.
        bit_depth: b; levels 0 and 2**b - 1 are the open-ended edge bins.

    Returns:
        Log mass in nats, the broadcast shape.
    """
    half = 0.5 * bin_width(bit_depth)
    k = to_levels(x, bit_depth)
    centre = to_unit(k, bit_depth)  # the level's own centre: no float threshold decides
    z_lo = (centre - half - loc) / scale
    z_hi = (centre + half - loc) / scale
    lo_cdf, hi_cdf = log_cdf(z_lo), log_cdf(z_hi)
    lo_sf, hi_sf = log_cdf(-z_lo), log_cdf(-z_hi)
    # Interior bins: the difference of the two CDFs taken in the lower tail, or of the two
    # survival functions in the upper tail, whichever is small and therefore precise.
    lower_tail = hi_cdf + log1mexp(lo_cdf - hi_cdf)
    upper_tail = lo_sf + log1mexp(hi_sf - lo_sf)
    interior = torch.where(z_lo + z_hi < 0, lower_tail, upper_tail)
    top = n_levels(bit_depth) - 1
    return torch.where(k == 0, hi_cdf, torch.where(k == top, lo_sf, interior))


def log_cdf_normal(z: Tensor) -> Tensor:
    return torch.special.log_ndtr(z)


def log_cdf_logistic(z: Tensor) -> Tensor:
    return torch.nn.functional.logsigmoid(z)


def log_cdf_laplace(z: Tensor) -> Tensor:
    # F(z) = exp(z)/2 for z < 0, 1 - exp(-z)/2 for z >= 0; each branch on its own range.
    neg = z.clamp(max=0.0) - LN2
    pos = torch.log1p(-0.5 * torch.exp(-z.clamp(min=0.0)))
    return torch.where(z < 0, neg, pos)
