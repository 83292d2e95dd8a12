"""A trained model, loaded from its model file: the VAE with its config and normalisation.

``load_model("RUN_DIR/model.pt")`` gives a :class:`TrainedModel` that applies itself to raw
images exactly as it was trained (same bit depth, same normalisation) and returns results in
the input's dtype and intensity range.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..data.normalise import Normalisation
from ..devices import pick_device
from ..model import VAE, build_vae
from ..training.config import RunConfig, load_config
from ..training.modelfile import ModelFileError, read_model_file

__all__ = ["TrainedModel", "load_model"]


class TrainedModel:
    """The VAE (in eval mode) with everything needed to use it on raw images."""

    def __init__(
        self,
        vae: VAE,
        config: RunConfig,
        normalisation: Normalisation,
        *,
        summary: dict | None = None,
        versions: dict | None = None,
        path: Path | None = None,
    ):
        self.vae = vae.eval()
        self.config, self.normalisation = config, normalisation
        self.summary, self.versions, self.path = summary or {}, versions or {}, path

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, device: str = "cpu") -> TrainedModel:
        """Load a model file (see :func:`load_model`)."""
        path = Path(path)
        payload = read_model_file(path)
        try:
            config = load_config(payload["config"])
            norm = Normalisation.from_dict(payload["normalisation"])
        except Exception as exc:
            raise ModelFileError(f"{path.name}: damaged config or normalisation ({exc})") from None
        vae = build_vae(config.model, config.likelihood, bit_depth=norm.bit_depth)
        try:
            vae.load_state_dict(payload["state_dict"], strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ModelFileError(
                f"{path.name}: weights do not match its config ({first})"
            ) from None
        model = cls(
            vae,
            config,
            norm,
            summary=payload.get("summary"),
            versions=payload.get("versions"),
            path=path,
        )
        return model.to(device)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def to(self, device: str | torch.device = "auto") -> TrainedModel:
        """Move to ``device`` (``auto``: CUDA, MPS or CPU); returns self."""
        self.vae.to(pick_device(device))
        return self

    @property
    def levels(self) -> int:
        return self.config.model.levels

    @torch.no_grad()
    def reconstruct_plane(
        self, plane: np.ndarray, *, posterior_levels: int | None = None, output: str = "mean"
    ) -> np.ndarray:
        """Reconstruct one whole 2D plane in one pass; same shape and dtype as ``plane``.

        Edges are padded by reflection up to a multiple of 2**levels. Memory grows with the
        plane's area; tiled inference for large images and stacks comes with the inference
        module.
        """
        if plane.ndim != 2:
            raise ValueError(f"expected a 2D plane, got shape {plane.shape}")
        m = 2**self.levels
        h, w = plane.shape
        padded = np.pad(plane, ((0, -h % m), (0, -w % m)), mode="reflect")
        x = torch.from_numpy(self.normalisation.to_model(padded))[None, None].to(self.device)
        y = self.vae.reconstruct(x, posterior_levels=posterior_levels, output=output)
        return self.normalisation.from_model(y[0, 0, :h, :w].float().cpu().numpy())

    def describe(self) -> dict:
        """What ``microvae info`` prints."""
        n_params = sum(p.numel() for p in self.vae.parameters())
        return {
            "file": str(self.path) if self.path else None,
            "skip_mode": self.config.model.skip_mode,
            "likelihood": self.config.likelihood.name,
            "levels": self.levels,
            "tile_size": self.config.data.tile_size,
            "parameters": n_params,
            "bit_depth": self.normalisation.bit_depth,
            "dtype": self.normalisation.dtype,
            "normalisation": self.normalisation.to_dict(),
            "can_generate": self.vae.can_generate,
            "elbo_is_bound": self.vae.elbo_is_bound,
            "versions": self.versions,
            "summary": self.summary,
            "config": self.config.to_dict(),
        }


def load_model(path: str | os.PathLike, *, device: str = "cpu") -> TrainedModel:
    """Load ``RUN_DIR/model.pt`` safely (no code in the file runs); ``device``: cpu, cuda, auto.

    Raises:
        ModelFileError: missing, damaged, foreign or unsafe file.
    """
    return TrainedModel.from_file(path, device=device)
