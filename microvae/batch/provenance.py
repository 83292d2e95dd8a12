"""The record of a batch run in its output folder: which outputs microvae wrote there, and from
which model, settings and input.

``microvae predict`` keeps one ``microvae-predict.json`` in its ``--out`` folder. Before a file
is processed its entry is written: the input's path, size and modification time, the model's
digest, the settings that shape the outputs, and the output names. The record is what lets a
run

- know its own outputs by what they are, wherever they lie (outputs beside the inputs are not
  taken for inputs, and real inputs are never taken for outputs);
- resume only what the same model made of the same input with the same settings, and say
  what differs otherwise.

The record is rewritten atomically; it holds no times of its own, so two runs that do the same
write the same record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import MicrovaeError
from ..inference import TrainedModel
from ..io import atomic_path, file_stem

__all__ = ["RECORD_NAME", "RunRecord", "input_identity", "model_digest"]

RECORD_NAME = "microvae-predict.json"
_FORMAT = "microvae-predict-record"
_VERSION = 1

_log = logging.getLogger("microvae.batch")


def model_digest(model: TrainedModel) -> str:
    """sha256 (hex) of what the model computes: its weights (names, dtypes, shapes, bytes),
    config, normalisation and, once ``microvae calibrate`` stored one, its spread scale (a
    posterior's std changes with it). The same model gives the same digest from ``model.pt``
    or from its bioimage.io package; any changed weight gives another."""
    h = hashlib.sha256()
    meta = {"config": model.config.to_dict(), "normalisation": model.normalisation.to_dict()}
    if model.spread_scale != 1.0:  # absent when uncalibrated: earlier digests still match
        meta["spread_scale"] = model.spread_scale
    h.update(json.dumps(meta, sort_keys=True).encode())
    for name, tensor in sorted(model.vae.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits as int16
            t = t.view(torch.int16)
        h.update(np.ascontiguousarray(t.numpy()).tobytes())
    return h.hexdigest()


def input_identity(path: Path) -> dict:
    """What identifies an input's content cheaply: its resolved path, size in bytes and
    modification time (ns); for an OME-Zarr folder the total over its files, their count and
    the newest time."""
    path = Path(path)
    if path.is_dir():
        size, count, newest = 0, 0, 0
        for root, _, files in os.walk(path):
            for f in files:
                st = os.stat(os.path.join(root, f))
                size, count, newest = size + st.st_size, count + 1, max(newest, st.st_mtime_ns)
        return {"input": str(path.resolve()), "size": size, "files": count, "mtime_ns": newest}
    st = path.stat()
    return {"input": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class RunRecord:
    """``microvae-predict.json`` of an output folder: an entry per input (by its stem, as the
    output names are): ``input``, ``size``, ``mtime_ns`` (and ``files`` for a folder),
    ``model`` (digest), ``settings``, ``outputs`` (file names in the folder)."""

    folder: Path
    entries: dict[str, dict] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder / RECORD_NAME

    @classmethod
    def load(cls, folder: Path, *, fresh: bool = False) -> RunRecord:
        """The folder's record (empty where there is none). A damaged record is an error,
        unless ``fresh`` (its outputs are all to be replaced)."""
        folder = Path(folder)
        path = folder / RECORD_NAME
        if not path.is_file():
            return cls(folder)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != _FORMAT or not isinstance(data.get("files"), dict):
                raise ValueError(f"no '{_FORMAT}' marker")
        except (ValueError, OSError) as exc:
            if fresh:
                return cls(folder)
            raise MicrovaeError(
                f"{path}: damaged record of an earlier run ({exc}); microvae cannot tell which "
                "files there it wrote: pass --overwrite to replace its outputs, or choose "
                "another --out"
            ) from None
        return cls(folder, dict(data["files"]))

    def save(self) -> None:
        body = {"format": _FORMAT, "version": _VERSION, "files": self.entries}
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")

    def own_outputs(self) -> set[Path]:
        """The resolved paths of every output this folder's runs wrote (or were writing)."""
        return {
            (self.folder / name).resolve()
            for entry in self.entries.values()
            for name in entry.get("outputs", ())
        }

    def entry(self, path: Path, digest: str, settings: dict, outputs: list[Path]) -> dict:
        """The entry of input ``path`` for this run."""
        return {
            **input_identity(path),
            "model": digest,
            "settings": settings,
            "outputs": sorted(p.name for p in outputs),
        }

    def differences(self, path: Path, new: dict) -> list[str]:
        """What differs between the recorded run of ``path`` and ``new`` (its entry for this
        run), in words; empty where they match."""
        old = self.entries.get(file_stem(path))
        if old is None:
            return [f"no record of the run that wrote them (no {RECORD_NAME} entry)"]
        said = []
        if old.get("model") != new["model"]:
            said.append("another model")
        settings_old, settings_new = old.get("settings", {}), new["settings"]
        for key in sorted(set(settings_old) | set(settings_new)):
            if key == "outputs":
                continue  # an output added is made, one dropped kept: not a difference
            if settings_old.get(key) != settings_new.get(key):
                was, now = (_value(d.get(key)) for d in (settings_old, settings_new))
                said.append(f"{key} {was} -> {now}")
        if old.get("input") != new["input"]:
            said.append(f"another input file ({old.get('input')})")
        elif any(old.get(k) != new.get(k) for k in ("size", "mtime_ns", "files")):
            said.append("the input file was changed since")
        return said


def _value(v) -> str:
    """A setting's value in a message: None is the model's default."""
    return "default" if v is None else repr(v)
