"""Does the model use its latent space? Collapse diagnostics of a trained model on images.

:func:`diagnose` measures, on training-sized tiles of the given images: the mean KL per latent
channel and per level, the active units (KL where used above ``threshold``, 0.01 nats by
default), the Frobenius norms of the decoder weights that read z per level, the sensitivity of the
reconstruction to replacing z by prior noise (in total and per level) and the verdict
(healthy / partly collapsed / collapsed) with the reasons; the definitions are in
:mod:`microvae.model.collapse`. Without images it reports what the model file holds: the
diagnostics of its last validation, and the weight norms.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import numpy as np
import torch

from ..inference import TrainedModel
from ..model import collapse_report, z_weight_norms
from ..objective import iwae_bound
from .tiles import TileSet, collect_tiles

__all__ = ["diagnose", "format_diagnostics", "likelihood_bounds"]


def diagnose(
    model: TrainedModel,
    inputs: str | os.PathLike | Iterable[str | os.PathLike] | TileSet | np.ndarray | None = None,
    *,
    threshold: float = 0.01,
    max_tiles: int = 64,
    batch_size: int = 16,
    seed: int = 0,
    channel: int | None = None,
    axes: str | None = None,
) -> dict:
    """Collapse diagnostics as a JSON-ready dict (see the module docstring).

    Args:
        inputs: TIFF files, folders or globs; a TileSet; raw tiles (N, T, T); or None for the
            numbers stored in the model file.
        max_tiles: tiles of the training size taken from the inputs (most signal first).
        seed: seeds the prior noise of the sensitivity.
    """
    info = model.describe()
    head = {
        "model": info["file"],
        "skip_mode": info["skip_mode"],
        "likelihood": info["likelihood"],
        "levels": info["levels"],
        "can_generate": info["can_generate"],
        "elbo_is_bound": info["elbo_is_bound"],
    }
    if inputs is None:
        stored = (model.summary or {}).get("collapse")
        return {
            **head,
            "source": "the model file (its last validation)",
            "n_tiles": None,
            **(stored or {"verdict": None, "reasons": ["the model file holds no diagnostics"]}),
            "z_weight_norms": z_weight_norms(model.vae),
        }
    if isinstance(inputs, TileSet):
        tiles = inputs.tiles
    elif isinstance(inputs, np.ndarray):
        tiles = inputs
    else:
        tiles = collect_tiles(model, inputs, max_tiles=max_tiles, channel=channel, axes=axes).tiles
    tiles = tiles[:max_tiles]
    batches = [model.to_tensor(tiles[a : a + batch_size]) for a in range(0, len(tiles), batch_size)]
    g = torch.Generator(device=model.device).manual_seed(seed)
    report = collapse_report(model.vae, batches, threshold=threshold, generator=g)
    return {**head, "source": "inputs", "n_tiles": int(len(tiles)), **report.to_dict()}


def format_diagnostics(d: dict) -> str:
    """The diagnostics as a few lines of text, for the terminal."""
    lines = [f"model: {d['model']} ({d['skip_mode']}, {d['likelihood']}, {d['levels']} levels)"]
    where = d["source"] + (f", {d['n_tiles']} tiles" if d.get("n_tiles") else "")
    lines.append(f"measured on: {where}")
    verdict = d.get("verdict")
    reasons = "; ".join(d.get("reasons") or [])
    lines.append(f"verdict: {verdict}" + (f" ({reasons})" if reasons else ""))
    lines.extend(f"note: {n}" for n in d.get("notes") or [])
    if "active_units" in d:
        lines.append(
            f"active latent channels: {d['active_units']}/{d['total_units']} "
            f"(KL > {d['threshold_nats']} nats per element where used: their top decile)"
        )
    for i, kl in enumerate(d.get("kl_per_level_nats") or []):
        per_ch = d["kl_per_channel_nats_per_element"][i]
        chans = " ".join(f"{v:.3g}" for v in per_ch)
        sens = d.get("sensitivity_per_level") or []
        extra = f", sensitivity {sens[i]:.3g}" if i < len(sens) else ""
        lines.append(
            f"level {i}: KL {kl:.4g} nats/tile, z-reader norm {d['z_weight_norms'][i]:.3g}"
            f"{extra}; KL per channel [{chans}]"
        )
    if "sensitivity" in d:
        lines.append(
            f"sensitivity (z replaced by prior noise): {d['sensitivity']:.3g} "
            "(mean |change| in the data's normalised units: the training percentiles lie 2 apart)"
        )
    return "\n".join(lines)


@torch.no_grad()
def likelihood_bounds(
    model: TrainedModel, tiles: np.ndarray, k: int, *, batch_size: int = 16, seed: int = 0
) -> dict:
    """The ELBO and the importance-weighted bound IWAE_K (Burda et al.) on raw ``tiles``
    (N, T, T), as JSON-ready numbers: the means over tiles in nats per tile and in bits per
    dimension (the model's bit depth, as in training), and their gap. IWAE_K >= ELBO, and it
    tightens towards log p(x) as K grows; both are bounds only where ``elbo_is_bound``
    (not for deterministic skips)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    torch.manual_seed(seed)  # the posterior samples
    elbo, iwae, dims = [], [], None
    for a in range(0, len(tiles), batch_size):
        x = model.to_tensor(tiles[a : a + batch_size])
        out = model.vae(x)
        dims = out.n_dims
        elbo.append(out.elbo.cpu())
        iwae.append(iwae_bound(model.vae, x, k).cpu())
    if dims is None:
        raise ValueError("likelihood_bounds needs at least one tile")
    e, w = float(torch.cat(elbo).mean()), float(torch.cat(iwae).mean())
    to_bpd = -1.0 / (dims * math.log(2))
    return {
        "k": k,
        "n_tiles": int(len(tiles)),
        "elbo_nats": e,
        "iwae_nats": w,
        "elbo_bits_per_dim": e * to_bpd,
        "iwae_bits_per_dim": w * to_bpd,
        "gap_nats": w - e,
        "is_bound": bool(model.vae.elbo_is_bound),
    }
