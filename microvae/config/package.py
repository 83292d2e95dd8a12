"""bioimage.io packages that microvae exported, read back as model files.

A package (a zip with ``rdf.yaml``, a folder with one, or the ``rdf.yaml``) carries, under
``config: microvae:``, the run config, normalisation, summary and versions; its
``pytorch_state_dict`` weights are the VAE's (keys prefixed ``vae.``, the
:class:`microvae.model.exported.Reconstructor`'s). Only YAML and ``weights_only`` torch files
are read: nothing in a package runs. Every file the rdf names must lie inside the package (no
absolute path, no ``..``, no URL, no link out of a folder), and every file it gives a sha256
for must match it, before anything is loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path, PurePosixPath

import torch
import yaml

from .format import FORMAT_VERSION, ModelFileError
from .run import yaml_problem

__all__ = ["TOP_PRIOR", "WEIGHTS", "is_bioimageio_package", "read_package"]

WEIGHTS = "weights.pt"
TOP_PRIOR = "top_prior.pt"


def is_bioimageio_package(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a bioimage.io package: a zip with an ``rdf.yaml``, a folder with
    one, or the ``rdf.yaml`` itself."""
    path = Path(path)
    if path.is_dir():
        return (path / "rdf.yaml").is_file()
    if path.name.endswith(("rdf.yaml", "bioimageio.yaml")):
        return path.is_file()
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return any(n in z.namelist() for n in ("rdf.yaml", "bioimageio.yaml"))
    return False


# -- reading --------------------------------------------------------------------------------


def read_package(path: str | os.PathLike) -> dict:
    """A package's microvae payload, as :func:`microvae.config.read_model_file` gives a model
    file's: ``format_version``, ``state_dict``, ``config``, ``normalisation``, ``summary``,
    ``versions``, ``top_prior`` (or None). Only YAML and ``weights_only`` torch files are
    read; nothing in the package runs."""
    path = Path(path)
    files = _PackageFiles(path)
    try:
        rdf = yaml.safe_load(files.read(files.rdf_name))
    except yaml.YAMLError as exc:
        raise ModelFileError(
            f"{path.name}: rdf.yaml is not valid YAML ({yaml_problem(exc)})"
        ) from None
    files.verify(rdf)
    ours = ((rdf or {}).get("config") or {}).get("microvae")
    if not isinstance(ours, dict):
        raise ModelFileError(
            f"{path.name}: a bioimage.io package, but not one microvae exported (no "
            "config: microvae: section); load it with bioimageio.core instead"
        )
    weights = (rdf.get("weights") or {}).get("pytorch_state_dict") or {}
    source = weights.get("source")
    if not source:
        raise ModelFileError(f"{path.name}: no pytorch_state_dict weights in rdf.yaml")
    state = files.torch(source)
    prefix = "vae."
    payload = {
        "format_version": int(ours.get("format_version", FORMAT_VERSION)),
        "state_dict": {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)},
        "config": ours.get("config"),
        "normalisation": ours.get("normalisation"),
        "summary": ours.get("summary") or {},
        "versions": ours.get("versions") or {},
        "top_prior": files.torch(ours["top_prior"]) if ours.get("top_prior") else None,
    }
    if payload["config"] is None or payload["normalisation"] is None:
        raise ModelFileError(f"{path.name}: damaged package: no config or normalisation")
    return payload


def _sources(node) -> list[dict]:
    """Every ``{source: ..., sha256: ...}`` entry of an rdf (files it names), depth first."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("source"), str):
            found.append(node)
        for v in node.values():
            found += _sources(v)
    elif isinstance(node, list):
        for v in node:
            found += _sources(v)
    return found


class _PackageFiles:
    """The files of a package: a zip, a folder, or an rdf.yaml beside its files."""

    def __init__(self, path: Path):
        self.path = path
        if path.is_file() and zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
            names = self.zip.namelist()
            self.rdf_name = "rdf.yaml" if "rdf.yaml" in names else "bioimageio.yaml"
            self.root = None
        else:
            self.zip = None
            self.root = path if path.is_dir() else path.parent
            self.rdf_name = "rdf.yaml" if path.is_dir() else path.name
        self._verified: dict[str, bytes] = {}

    def _inside(self, name: str) -> str:
        """``name`` as a path inside the package, or an error: a file the rdf names must not
        leave it (an absolute path, ``..``, a URL, or a link out of a folder)."""
        parts = PurePosixPath(name.replace("\\", "/")).parts
        leaves = "://" in name or not parts or parts[0] == "/" or ".." in parts
        if not leaves and self.root is not None:
            root = self.root.resolve()
            leaves = not (root / name).resolve().is_relative_to(root)
        if leaves or (len(parts[0]) == 2 and parts[0].endswith(":")):  # C: on Windows
            raise ModelFileError(
                f"{self.path.name}: rdf.yaml names {name!r}, outside the package; refused "
                "(a package's files lie inside it; export the model again)"
            )
        return name

    def read(self, name: str) -> bytes:
        name = self._inside(name)
        if name in self._verified:
            return self._verified[name]
        try:
            if self.zip is not None:
                return self.zip.read(name)
            return (self.root / name).read_bytes()
        except (KeyError, FileNotFoundError, IsADirectoryError):
            raise ModelFileError(f"{self.path.name}: the package has no {name}") from None

    def verify(self, rdf) -> None:
        """Every file the rdf names lies inside the package, and matches its sha256 where the
        rdf gives one (the files are kept, read once)."""
        for entry in _sources(rdf):
            name, expected = str(entry["source"]), entry.get("sha256")
            data = self.read(name)
            if expected is None:
                continue
            got = hashlib.sha256(data).hexdigest()
            if got != str(expected).lower():
                raise ModelFileError(
                    f"{self.path.name}: {name} does not match its sha256 in rdf.yaml (expected "
                    f"{str(expected)[:12]}..., got {got[:12]}...): the file was altered or "
                    "damaged after export; refused. Export the model again"
                )
            self._verified[name] = data

    def torch(self, name: str) -> dict:
        try:
            return torch.load(io.BytesIO(self.read(name)), map_location="cpu", weights_only=True)
        except ModelFileError:
            raise
        except Exception as exc:
            raise ModelFileError(
                f"{self.path.name}: {name} cannot be read as weights only "
                f"({type(exc).__name__}); the package is damaged or unsafe"
            ) from None
