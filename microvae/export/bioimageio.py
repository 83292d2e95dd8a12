"""bioimage.io model packages (spec 0.5): a trained model out, and back in.

The package holds the weights as a PyTorch state dict of
:class:`microvae.model.exported.Reconstructor` (built from plain keyword arguments in the
description, so any bioimage.io consumer with microvae installed can rebuild it), the
normalisation as the description's pre- and postprocessing (raw intensities to model units and
back, then a clip to the data's range), a test input and its reconstruction (``.npy``), a cover
image (input | reconstruction | difference), a README, and, under ``config: microvae:``, what
:func:`microvae.load_model` needs to load the package as the model it came from (run config,
normalisation, training summary, versions; the top level's fitted prior as an attachment).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from .. import __version__
from ..config import FORMAT_VERSION, TOP_PRIOR, WEIGHTS
from ..errors import MicrovaeError
from ..extras import require
from ..inference import TrainedModel
from ..io import ImageRecord, save_png, side_by_side
from ..latent import tiles_from_planes

__all__ = ["BioimageioError", "export_bioimageio"]

ARCHITECTURE = {"callable": "Reconstructor", "import_from": "microvae.model.exported"}


class BioimageioError(MicrovaeError, ValueError):
    """A package cannot be written or read; the message names it and says why."""


# -- writing --------------------------------------------------------------------------------


def _processing(norm) -> tuple[list[dict], list[dict]]:
    """The Normalisation as bioimage.io pre-/postprocessing: raw -> model units (an affine)
    and back, clipped to the data's range."""
    if norm.bit_depth is None:
        gain = 2.0 / (norm.high - norm.low)
        offset = -1.0 - norm.low * gain
        lo, hi = None, None
    else:
        levels = 2**norm.bit_depth
        gain, offset = 2.0 / (levels - 1), -1.0
        lo, hi = 0.0, float(levels - 1)
    pre = [
        {"id": "ensure_dtype", "kwargs": {"dtype": "float32"}},
        {"id": "scale_linear", "kwargs": {"gain": gain, "offset": offset}},
    ]
    post = [{"id": "scale_linear", "kwargs": {"gain": 1.0 / gain, "offset": -offset / gain}}]
    if lo is not None:
        post.append({"id": "clip", "kwargs": {"min": lo, "max": hi}})
    return pre, post


def _test_tile(model: TrainedModel, image: np.ndarray | None) -> np.ndarray:
    """A tile of the model's training size, (T, T), or (D, T, T) for a 3D model: where
    ``image``'s middle plane has most signal (a 3D model's: the middle D planes there), or
    synthetic mitochondria in the training data's intensity range."""
    t = model.default_tile()
    depth = model.config.data.tile_depth if model.dims == 3 else 1
    if image is None:
        from ..synthetic import generate

        shape = (2 * t, 2 * t) if model.dims == 2 else (depth, 2 * t, 2 * t)
        s = generate(shape=shape, seed=0).image.astype(np.float64)
        norm = model.normalisation
        s = (s - s.min()) / max(np.ptp(s), 1e-12) * (norm.high - norm.low) + norm.low
        dtype = np.dtype(norm.dtype)
        stack = np.rint(s).astype(dtype) if dtype.kind in "ui" else s.astype(np.float32)
    else:
        stack = np.asarray(image)
        while stack.ndim > model.dims:  # the middle time point, channel or plane
            stack = stack[stack.shape[0] // 2]
    if model.dims == 2:
        stack = stack[None]
    h, w = stack.shape[1:]
    if len(stack) < depth or h < t or w < t:
        have = " x ".join(map(str, stack.shape[-model.dims :]))
        want = f"{depth} x {t} x {t}" if model.dims == 3 else f"{t} x {t}"
        raise BioimageioError(f"the test image ({have}) is smaller than the model's tile ({want})")
    z = (len(stack) - depth) // 2
    block = stack[z : z + depth]
    # the latent tools' choice of tile: the one with most signal (above the Otsu threshold)
    _, y, x = tiles_from_planes([block[depth // 2]], t, max_tiles=1, min_signal=0).positions[0]
    tile = block[:, y : y + t, x : x + t]
    return np.ascontiguousarray(tile if model.dims == 3 else tile[0])


def _readme(model: TrainedModel, name: str) -> str:
    cfg, s = model.config, model.summary or {}
    val = (s.get("validation") or {}).get("val/bits_per_dim")
    collapse = (s.get("collapse") or {}).get("verdict", "n/a")
    tile = " x ".join(map(str, cfg.model.tile_shape()))
    sizes = " x ".join(map(str, cfg.model.multiples()))
    kind = "2D" if model.dims == 2 else "3D, a volume (Z, Y, X)"
    return f"""# {name}

A microvae model (microvae {__version__}): a {cfg.model.skip_mode} VAE with a
{cfg.likelihood.name} likelihood, {cfg.model.levels} latent levels, trained on
{tile} tiles for {s.get("steps", "?")} steps. It
reconstructs a single-channel image ({kind}, at least a tile, of sides that are multiples of
{sizes}); the preprocessing maps raw intensities to the model's units, the
postprocessing maps the reconstruction back and clips it to the data's range.

With microvae installed: `microvae.load_model("package.zip")` loads it as the model it came
from (tiled reconstruction of large images and stacks, latents, samples).

## Validation

Validation bits/dim at the saved weights: {val if val is not None else "n/a"}; latent space
verdict: {collapse}. The test tensors are a tile and its reconstruction by these weights;
`bioimageio test package.zip` reproduces them. Check the fidelity of fine structure on your own
images with `microvae evaluate` (PSNR/SSIM, FRC, high-frequency ratio, morphology ratios and a
ground-truth-free noise-split estimate).
"""


def export_bioimageio(
    model: TrainedModel,
    out: str | os.PathLike,
    *,
    image: np.ndarray | ImageRecord | None = None,
    name: str | None = None,
    authors: list[str] = (),
    license: str = "CC-BY-4.0",
    description: str | None = None,
) -> Path:
    """Write ``model`` as a bioimage.io model package (a zip, spec 0.5) at ``out``.

    Args:
        image: where the test tile comes from (its middle plane's tile with most signal);
            None: synthetic mitochondria in the training data's intensity range.
        authors: names for the description (default: "microvae user").
    Returns:
        The package path, written atomically after the description validated.
    """
    spec = require("bioimageio.spec", "bioimageio", "bioimage.io export")
    out = Path(out)
    if out.suffix != ".zip":
        raise BioimageioError(f"{out}: a bioimage.io package is a .zip; name it {out.stem}.zip")
    if not out.parent.is_dir():
        raise BioimageioError(f"{out}: folder {out.parent} does not exist")
    if isinstance(image, ImageRecord):
        image = (
            next(iter(image.iter_volumes()))[1]
            if model.dims == 3
            else next(iter(image.iter_planes()))[1]
        )
    tile = _test_tile(model, image)
    raw_out = _reconstruct_raw(model, tile)
    name = name or f"microvae {model.config.model.skip_mode} {model.config.likelihood.name}"
    with tempfile.TemporaryDirectory(prefix="microvae-bioimageio-") as tmp:
        folder = Path(tmp)
        attachments = _write_files(folder, model, tile, raw_out, name)
        rdf = _description(spec, model, name, authors, license, description, attachments)
        (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))
        _package(spec, folder / "rdf.yaml", out)
    return out


def _reconstruct_raw(model: TrainedModel, tile: np.ndarray) -> np.ndarray:
    """The test output: ``tile``'s reconstruction by the exported network on the CPU,
    through the package's own pre- and postprocessing, (1, 1, T, T) float32 raw values."""
    norm = model.normalisation
    device = model.device
    model.to("cpu")
    try:
        x = norm.to_model(tile)[None, None]
        with torch.no_grad():
            y = model.vae.reconstruct(torch.from_numpy(x)).numpy()
    finally:
        model.to(device)
    _, post = _processing(norm)
    raw_out = (y * post[0]["kwargs"]["gain"] + post[0]["kwargs"]["offset"]).astype(np.float32)
    if len(post) > 1:
        raw_out = np.clip(raw_out, post[1]["kwargs"]["min"], post[1]["kwargs"]["max"])
    return raw_out


def _write_files(folder: Path, model, tile, raw_out, name: str) -> list[dict]:
    """The package's files in ``folder``: weights, test tensors, cover, README and the top
    prior; the attachments' entries."""
    state = {f"vae.{k}": v.detach().cpu() for k, v in model.vae.state_dict().items()}
    torch.save(state, folder / WEIGHTS)
    np.save(folder / "test_input.npy", tile.astype(np.float32)[None, None])
    np.save(folder / "test_output.npy", raw_out)
    middle = (slice(None),) if tile.ndim == 2 else (len(tile) // 2,)  # a 3D tile's middle plane
    save_png(folder / "cover.png", side_by_side(tile[middle], raw_out[0, 0][middle], zoom=4))
    (folder / "README.md").write_text(_readme(model, name))
    attachments = []
    if model.top_prior is not None:
        torch.save(
            {
                k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                for k, v in model.top_prior.to_dict().items()
            },
            folder / TOP_PRIOR,
        )
        attachments.append({"source": TOP_PRIOR})
    return attachments


def _package(spec, rdf_path: Path, out: Path) -> None:
    """Validate the description and write the zip, complete or not at all."""
    descr = spec.load_description(rdf_path, perform_io_checks=True)
    if not isinstance(descr, spec.ModelDescr):
        summary = descr.validation_summary.format()
        raise BioimageioError(f"{out.name}: the description does not validate:\n{summary}")
    # complete or absent: written beside under a hidden name, then renamed
    partial = out.with_name(f".{out.stem}.{os.getpid()}.partial.zip")
    try:
        spec.save_bioimageio_package(descr, output_path=partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _description(spec, model, name, authors, license, description, attachments) -> dict:
    """The rdf (bioimage.io spec 0.5): inputs and outputs with their processing and test
    tensors, the weights and their architecture, and microvae's own config to load it back."""
    inputs, outputs = _tensors(model)
    rdf = {
        "format_version": spec.ModelDescr.implemented_format_version,
        "type": "model",
        "name": name,
        "description": description
        or "Variational autoencoder reconstruction of fluorescence microscopy images that "
        "keeps fine mitochondrial structure (microvae).",
        "authors": [{"name": a} for a in (list(authors) or ["microvae user"])],
        "license": license,
        "tags": ["microvae", "vae", "fluorescence", "mitochondria", f"{model.dims}d", "pytorch"],
        "documentation": {"source": "README.md"},
        "covers": [{"source": "cover.png"}],
        "inputs": inputs,
        "outputs": outputs,
        "weights": _weights(model),
        "config": {
            "microvae": {
                "format_version": FORMAT_VERSION,
                "config": model.config.to_dict(),
                "normalisation": model.normalisation.to_dict(),
                "summary": model.summary,
                "versions": model.versions,
                "top_prior": TOP_PRIOR if attachments else None,
            }
        },
    }
    if attachments:
        rdf["attachments"] = attachments
    return rdf


def _tensors(model) -> tuple[list[dict], list[dict]]:
    """The input ``raw`` (b, c, y, x; y and x at least a tile, in steps of 2**levels; a 3D
    model's b, c, z, y, x, z at least the tile's depth, in steps of the product of its Z
    strides) and the output ``reconstruction`` of the same size, with their processing and
    test tensors."""
    cfg = model.config
    pre, post = _processing(model.normalisation)
    sizes = {
        axis: {"min": int(side), "step": int(step)}
        for axis, side, step in zip(
            "zyx"[-model.dims :], cfg.model.tile_shape(), cfg.model.multiples()
        )
    }
    axes_in = [
        {"type": "batch"},
        {"type": "channel", "channel_names": ["intensity"]},
        *({"type": "space", "id": a, "size": size} for a, size in sizes.items()),
    ]
    same = [
        {"type": "batch"},
        {"type": "channel", "channel_names": ["reconstruction"]},
        *({"type": "space", "id": a, "size": {"tensor_id": "raw", "axis_id": a}} for a in sizes),
    ]
    inputs = {
        "id": "raw",
        "axes": axes_in,
        "test_tensor": {"source": "test_input.npy"},
        "data": {"type": "float32"},
        "preprocessing": pre,
    }
    outputs = {
        "id": "reconstruction",
        "axes": same,
        "test_tensor": {"source": "test_output.npy"},
        "data": {"type": "float32"},
        "postprocessing": post,
    }
    return [inputs], [outputs]


def _weights(model) -> dict:
    """The PyTorch state dict and the architecture that takes it (microvae's own config)."""
    cfg = model.config
    return {
        "pytorch_state_dict": {
            "source": WEIGHTS,
            "architecture": {
                **ARCHITECTURE,
                "kwargs": {
                    "model": cfg.model.model_dump(mode="json"),
                    "likelihood": cfg.likelihood.model_dump(mode="json"),
                    "bit_depth": model.normalisation.bit_depth,
                },
            },
            "pytorch_version": torch.__version__.split("+")[0],
        }
    }
