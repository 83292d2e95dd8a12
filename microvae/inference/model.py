"""A trained model, loaded from its model file: the VAE with its config and normalisation.

``load_model("RUN_DIR/model.pt")`` gives a :class:`TrainedModel` that applies itself to raw
images exactly as it was trained (same bit depth, same normalisation) and returns results in
the input's dtype and intensity range.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch

from ..data.normalise import Normalisation
from ..devices import pick_device
from ..errors import AxesError, ShapeError
from ..io import ImageRecord
from ..model import VAE, TopPrior, build_vae
from ..training.config import RunConfig, load_config
from ..training.modelfile import ModelFileError, read_model_file
from .embedding import pool_latents
from .tiled import TileOptions, drain, iter_tiles
from .tiling import TileGrid

__all__ = ["TrainedModel", "load_model"]

_log = logging.getLogger("microvae.inference")


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
        top_prior: TopPrior | None = None,
    ):
        self.vae = vae.eval()
        # the top level's fitted aggregate posterior (microvae.model.aggregate), for samples
        self.top_prior = top_prior
        self.config, self.normalisation = config, normalisation
        self.summary, self.versions, self.path = summary or {}, versions or {}, path
        self._warned: set[str] = set()

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
        state = dict(payload["state_dict"])
        if payload["format_version"] == 1:
            # format 1 read the decoder's outputs in [-1, 1] units: the identity data affine
            state.setdefault("likelihood.data_scale", torch.ones(()))
            state.setdefault("likelihood.data_shift", torch.zeros(()))
        try:
            vae.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ModelFileError(
                f"{path.name}: weights do not match its config ({first})"
            ) from None
        top = None
        if payload.get("top_prior") is not None:
            try:
                top = TopPrior.from_dict(payload["top_prior"])
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ModelFileError(f"{path.name}: damaged top_prior ({exc})") from None
        model = cls(
            vae,
            config,
            norm,
            summary=payload.get("summary"),
            versions=payload.get("versions"),
            path=path,
            top_prior=top,
        )
        return model.to(device)

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def to(self, device: str | torch.device = "auto") -> TrainedModel:
        """Move to ``device`` (``auto``: CUDA, MPS or CPU); returns self."""
        self.vae.to(pick_device(device))
        if self.top_prior is not None:
            self.top_prior = self.top_prior.to(self.device)
        return self

    @property
    def levels(self) -> int:
        return self.config.model.levels

    # -- tiles and planes ---------------------------------------------------------------------

    def default_tile(self) -> int:
        """The training tile size: GroupNorm normalises over a whole tile, so a model sees
        tiles like those it was trained on (on the synthetic demo data, a GroupNorm model lost
        4 dB of PSNR on 4x larger tiles; a model without normalisation did not)."""
        return self.config.data.tile_size

    def _tiles(self, options: TileOptions) -> tuple[int, int]:
        tile = options.tile_size or self.default_tile()
        m = 2**self.levels
        if tile % m:
            raise ShapeError(
                f"tile size {tile} is not a multiple of 2**levels = {m}; use e.g. "
                f"{tile - tile % m or m}"
            )
        overlap = tile // 4 if options.overlap is None else options.overlap
        return tile, overlap

    def _to_model(self, plane: np.ndarray, source: str) -> np.ndarray:
        norm = self.normalisation
        if norm.bit_depth is not None:
            top = 2**norm.bit_depth - 1
            lo, hi = float(plane.min()), float(plane.max())
            if (lo < 0 or hi > top) and source not in self._warned:
                self._warned.add(source)  # once per file, not once per plane
                _log.warning(
                    "%s: values %g..%g lie outside the model's levels 0..%d (%d-bit); "
                    "they are clipped",
                    source,
                    lo,
                    hi,
                    top,
                    norm.bit_depth,
                )
        return norm.to_model(plane)

    def check_input(self, plane: np.ndarray, source: str) -> None:
        """Warn when a plane (the first of an image) differs from the training data: its
        dtype, or its bright pixels (99.8th percentile) 4x off the training data's."""
        dtype, high = plane.dtype, float(np.percentile(plane, 99.8))
        norm = self.normalisation
        if np.dtype(dtype) != np.dtype(norm.dtype):
            _log.warning(
                "%s: %s data, the model was trained on %s; intensities are used as they are",
                source,
                np.dtype(dtype).name,
                norm.dtype,
            )
        if norm.high > 0 and not norm.high / 4 <= high <= norm.high * 4:
            _log.warning(
                "%s: bright pixels reach %g, the training data's reached %g (99.8th "
                "percentile); results may be poor outside the trained range",
                source,
                high,
                norm.high,
            )

    def to_tensor(self, raw: np.ndarray) -> torch.Tensor:
        """Raw tiles (N, H, W) or (H, W), any dtype -> model input (N, 1, H, W) float32 in
        [-1, 1] on the model's device, normalised as in training."""
        raw = np.asarray(raw)
        if raw.ndim == 2:
            raw = raw[None]
        if raw.ndim != 3:
            raise ShapeError(f"expected tiles (N, H, W) or one (H, W), got shape {raw.shape}")
        x = np.stack([self._to_model(t, "tiles") for t in raw])[:, None]
        return torch.from_numpy(x).to(self.device)

    def to_raw(self, x: torch.Tensor | np.ndarray, dtype: np.dtype | str | None = None):
        """Model output (N, 1, H, W) in [-1, 1] -> (N, H, W) in raw intensities of ``dtype``
        (default: the training data's)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().float().cpu().numpy()
        x = np.asarray(x, np.float32)
        if x.ndim == 4:
            x = x[:, 0]
        return self._from_model(x, np.dtype(dtype or self.normalisation.dtype))

    def _from_model(self, y: np.ndarray, dtype: np.dtype) -> np.ndarray:
        raw = self.normalisation.from_model(y)
        dtype = np.dtype(dtype)
        if raw.dtype == dtype:
            return raw
        if dtype.kind in "ui":  # another integer dtype than the training data's
            info = np.iinfo(dtype)
            raw = np.clip(raw, info.min, info.max)
        return raw.astype(dtype)

    def _iter_plane(
        self, plane: np.ndarray, options: TileOptions | None, source: str, **what
    ) -> Generator[tuple[int, int], None, dict]:
        if plane.ndim != 2:
            raise ShapeError(f"{source}: expected a 2D plane, got shape {plane.shape}")
        options = options or TileOptions()
        tile, overlap = self._tiles(options)
        # padded in its own dtype, then converted: one float32 copy of the plane, not two
        return (
            yield from iter_tiles(
                self.vae,
                plane,
                options,
                tile=tile,
                overlap=overlap,
                to_model=lambda padded: self._to_model(padded, source),
                **what,
            )
        )

    def count_tiles(self, shape: tuple[int, int], options: TileOptions | None = None) -> int:
        """How many tiles a plane of ``shape`` (H, W) is cut into with ``options``."""
        tile, overlap = self._tiles(options or TileOptions())
        grid = TileGrid.plan(shape, tile=tile, overlap=overlap, multiple=2**self.levels)
        return len(grid.positions)

    def iter_process_plane(
        self,
        plane: np.ndarray,
        *,
        options: TileOptions | None = None,
        source: str = "plane",
        latents: bool = False,
    ) -> Generator[tuple[int, int], None, tuple[np.ndarray, list[np.ndarray] | None]]:
        """:meth:`process_plane` step by step, for progress bars and cancellation: yields
        (tiles done, tiles in all) after every batch of tiles and returns (reconstruction,
        latents or None). Stop iterating to stop the work (nothing is left behind)."""
        out = yield from self._iter_plane(plane, options, source, latents=latents)
        return self._from_model(out["reconstruction"], plane.dtype), out.get("latents")

    def reconstruct_plane(
        self, plane: np.ndarray, *, options: TileOptions | None = None, source: str = "plane"
    ) -> np.ndarray:
        """Reconstruct one 2D plane (any size) by tiles; same shape and dtype as ``plane``."""
        return self.process_plane(plane, options=options, source=source, latents=False)[0]

    def process_plane(
        self,
        plane: np.ndarray,
        *,
        options: TileOptions | None = None,
        source: str = "plane",
        latents: bool = True,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Reconstruction (as :meth:`reconstruct_plane`) and, with ``latents``, the latents
        (as :meth:`encode_plane`) of one plane, from one pass over its tiles."""
        return drain(
            self.iter_process_plane(plane, options=options, source=source, latents=latents)
        )

    def encode_plane(
        self, plane: np.ndarray, *, options: TileOptions | None = None, source: str = "plane"
    ) -> list[np.ndarray]:
        """Posterior means of one plane per latent level, top first: stitched maps
        (C_l, H_l, W_l), or (n_tiles, D) tile vectors for a global latent."""
        steps = self._iter_plane(plane, options, source, reconstruct=False, latents=True)
        return drain(steps)["latents"]

    def _record(self, array: np.ndarray, axes: str | None, channel: int | None) -> ImageRecord:
        array = np.asarray(array)
        if axes is None:
            if array.ndim != 2:
                raise AxesError(f"array of shape {array.shape}: pass axes=... (e.g. 'ZYX')")
            axes = "YX"
        rec = ImageRecord.from_array(array, axes, channel=channel)
        rec.require_single_channel()
        return rec

    @staticmethod
    def _where(rec: ImageRecord, idx: tuple[int, ...]) -> tuple:
        plane_axes = rec.plane_axes
        return tuple(
            idx[plane_axes.index(a)] if a in plane_axes else (slice(None) if a in "YX" else 0)
            for a in rec.axes
        )

    def reconstruct(
        self, array: np.ndarray, axes: str | None = None, *, channel: int | None = None, **options
    ) -> np.ndarray:
        """Reconstruct an image of any size and axes, plane by plane, by tiles.

        Args:
            array: the image, e.g. (Z, Y, X) uint16.
            axes: its axes (default ``YX`` for 2D arrays).
            channel: index to take from a C or S axis (the output then has no channel axis).
            **options: fields of :class:`TileOptions` (tile_size, overlap, batch_size,
                output='mean'|'sample', posterior_levels, sample_latents, seed).

        Returns:
            An array of the input's shape (less a chosen channel axis) and dtype, in its
            intensity range. Deterministic by default.
        """
        rec = self._record(array, axes, channel)
        opts = TileOptions(**options)
        out = np.empty(rec.shape, rec.dtype)
        for k, (idx, plane) in enumerate(rec.iter_planes()):
            if k == 0:
                self.check_input(plane, "array")
            out[self._where(rec, idx)] = self.reconstruct_plane(plane, options=opts)
        return out

    def encode(
        self, array: np.ndarray, axes: str | None = None, *, channel: int | None = None, **options
    ) -> dict[str, np.ndarray | list]:
        """Embeddings of every plane: ``embedding`` (*plane dims, 2 * sum C_l), the pooled
        posterior means of :func:`~microvae.inference.embedding.pool_latents`, and
        ``latents``: per plane, the stitched maps of every level (top first)."""
        rec = self._record(array, axes, channel)
        opts = TileOptions(**options)
        sizes = [rec.shape[rec.axes.index(a)] for a in rec.plane_axes]
        vectors, maps = [], []
        for _, plane in rec.iter_planes():
            levels = self.encode_plane(plane, options=opts)
            vectors.append(pool_latents(levels, batched=False))
            maps.append(levels)
        emb = np.stack(vectors).reshape(*sizes, -1)
        return {"embedding": emb, "latents": maps}

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
