"""The model file: one ``model.pt`` holding weights, config, normalisation, bit depth,
versions and a training summary (and, for generative models, the top latent level's fitted
aggregate posterior), readable without running any code from the file.

The file is a dict of tensors and plain data (str, int, float, bool, None, lists, dicts)
saved with ``torch.save`` and read with ``torch.load(..., weights_only=True)``, which refuses
pickled objects, so a tampered or foreign file raises :class:`ModelFileError` and nothing in it
is executed.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_path, file_kind
from .format import FORMAT, FORMAT_VERSION, REQUIRED, ModelFileError
from .package import is_bioimageio_package, read_package

__all__ = [
    "ModelFileError",
    "FORMAT",
    "FORMAT_VERSION",
    "save_model_file",
    "read_model_file",
    "write_calibration",
    "check_changeable",
]


def plain(obj: Any, where: str = "value") -> Any:
    """``obj`` as plain str/int/float/bool/None/list/dict (numpy scalars and str subclasses such
    as torch.__version__ converted), so that a weights-only load accepts it."""
    if obj is None or type(obj) in (str, int, float, bool):
        return obj
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj)
    if isinstance(obj, dict):
        return {str(k): plain(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"{where}: {type(obj).__name__} cannot be stored in a model file")


def versions() -> dict[str, str]:
    from .. import __version__

    return {
        "microvae": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def save_model_file(
    path: str | os.PathLike,
    *,
    state_dict: dict[str, torch.Tensor],
    config: dict,
    normalisation: dict,
    summary: dict,
    top_prior: dict | None = None,
) -> Path:
    """Write the model file atomically; tensors are moved to the CPU. ``top_prior``
    (optional, :meth:`microvae.model.TopPrior.to_dict`): the top level's fitted aggregate
    posterior, for sampling."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "config": plain(config, "config"),
        "normalisation": plain(normalisation, "normalisation"),
        "bit_depth": plain(normalisation.get("bit_depth")),
        "versions": plain(versions(), "versions"),
        "summary": plain(summary, "summary"),
    }
    if top_prior is not None:
        payload["top_prior"] = {
            k: v.detach().cpu() if isinstance(v, torch.Tensor) else plain(v, f"top_prior.{k}")
            for k, v in top_prior.items()
        }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of a model file, checked; never unpickles objects. A bioimage.io
    package that microvae exported (:mod:`microvae.config.package`) reads as the model file
    it came from.

    Raises:
        ModelFileError: missing, empty, not a torch file, contains pickled objects (possibly
            code), or not a microvae model file of a supported format version.
    """
    path = Path(path)
    name = path.name
    if is_bioimageio_package(path):
        return read_package(path)
    if path.is_dir() and (path / "model.pt").is_file():
        raise ModelFileError(f"{path}: a run folder; pass the model file in it, {path}/model.pt")
    if not path.is_file() and not path.exists():
        raise ModelFileError(f"{path}: model file not found; pass RUN_DIR/model.pt")
    if path.is_file() and path.stat().st_size == 0:
        raise ModelFileError(f"{name}: file is empty (0 bytes); it was not written completely")
    kind = file_kind(path)
    if kind not in ("a torch file", "a pickle", "a damaged zip archive"):
        # an image or another file where the model goes: say what it is, not "unsafe"
        raise ModelFileError(
            f"{name}: {kind}, not a microvae model; MODEL takes a model file (RUN_DIR/model.pt "
            "or an exported bioimage.io .zip), images go to the INPUT arguments after it"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for objects, RuntimeError/EOFError for damage
        text = str(exc).splitlines()[0][:200]
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            reason = "it holds pickled Python objects, which microvae never loads (unsafe)"
        else:
            reason = f"it cannot be read as a torch file ({type(exc).__name__}: {text})"
        raise ModelFileError(
            f"{name}: refused: {reason}; use a model.pt written by microvae"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{name}: not a microvae model file (no '{FORMAT}' marker)")
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ModelFileError(f"{name}: damaged microvae model file, missing {', '.join(missing)}")
    if payload["format_version"] > FORMAT_VERSION:
        raise ModelFileError(
            f"{name}: written by a newer microvae (format {payload['format_version']}, this one "
            f"reads up to {FORMAT_VERSION}); upgrade microvae"
        )
    return payload


def check_changeable(path: str | os.PathLike) -> None:
    """Raise :class:`ModelFileError` unless ``path`` is a microvae model file that can be
    changed in place (a bioimage.io package cannot: its files are checked by their hashes)."""
    path = Path(path)
    if is_bioimageio_package(path):
        raise ModelFileError(
            f"{path.name}: a bioimage.io package cannot be changed (its files are hashed); "
            "calibrate the model.pt it was exported from, then export it again"
        )
    read_model_file(path)  # the checks, and their messages


def write_calibration(path: str | os.PathLike, calibration: dict | None) -> Path:
    """Store ``calibration`` (plain data: what ``microvae calibrate`` fitted, with its
    ``scale``) in the model file at ``path``, replacing any before it (None removes it);
    the rest of the file is kept as it is. Written atomically: an interruption leaves the
    old file.

    Raises:
        ModelFileError: not a microvae model file, or an exported bioimage.io package (its
            files are checked by their hashes; calibrate the model.pt it came from and
            export again).
    """
    path = Path(path)
    check_changeable(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if calibration is None:
        payload.pop("calibration", None)
    else:
        payload["calibration"] = plain(calibration, "calibration")
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path
