"""A trained model, loaded from its model file: the VAE with its config and normalisation.

``load_model("RUN_DIR/model.pt")`` gives a :class:`TrainedModel` that applies itself to raw
images exactly as it was trained (same bit depth, same normalisation) and returns results in
the input's dtype and intensity range.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import ModelFileError, RunConfig, load_config, read_model_file
from ..data import Normalisation
from ..devices import pick_device
from ..errors import ShapeError
from ..io import ImageRecord
from ..model import VAE, TopPrior, build_vae
from .grid import TileGrid
from .pipeline import ArraySink, EmbeddingSink, LatentSink, QuantileSink, as_image, run_image
from .tiled import TileOptions, iter_tiles
from .volumes import ZGrid, iter_volume

__all__ = ["PlaneResult", "TrainedModel", "load_model"]

_log = logging.getLogger("microvae.inference")


@dataclass
class PlaneResult:
    """What :meth:`TrainedModel.plane_steps` returns: the reconstruction (H, W) in the
    plane's dtype, or None; the latents per level (top first), or None; when sampling
    (``TileOptions.samples`` > 1) the draws' standard deviation (H, W) and the quantiles
    asked (Q, H, W), float32 in the plane's units."""

    reconstruction: np.ndarray | None
    latents: list[np.ndarray] | None
    std: np.ndarray | None = None
    quantiles: np.ndarray | None = None


@dataclass
class Posterior:
    """What :meth:`TrainedModel.posterior` returns: the MMSE reconstruction (the input's
    shape and dtype), the per-pixel standard deviation of the draws and their quantiles
    (Q, *shape), float32 in the input's units."""

    mmse: np.ndarray
    std: np.ndarray
    quantiles: np.ndarray | None


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
        calibration: dict | None = None,
    ):
        self.vae = vae.eval()
        # the top level's fitted aggregate posterior (microvae.model.top_prior), for samples
        self.top_prior = top_prior
        self.config, self.normalisation = config, normalisation
        self.summary, self.versions, self.path = summary or {}, versions or {}, path
        # what `microvae calibrate` fitted (report.calibrate), or None
        self.calibration = calibration
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
        if payload["format_version"] < 3 and hasattr(vae, "use_format2_posterior_blocks"):
            vae.use_format2_posterior_blocks()
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
            calibration=payload.get("calibration"),
        )
        return model.to(device)

    @property
    def spread_scale(self) -> float:
        """The factor ``microvae calibrate`` fitted for the posterior's standard deviation
        (1.0 for a model never calibrated)."""
        return float((self.calibration or {}).get("scale", 1.0))

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
        if options.sampled and not self.vae.can_generate:
            name = self.path.name if self.path is not None else "the model"
            raise ShapeError(
                f"{name}: skip_mode '{self.config.model.skip_mode}' cannot sample its posterior "
                "(its skips hand the input's features to the decoder, so draws barely differ); "
                "use samples=1, or a ladder model"
            )
        tile = options.tile_size or self.default_tile()
        m = 2**self.levels
        if tile % m:
            raise ShapeError(
                f"tile size {tile} is not a multiple of 2**levels = {m}; use e.g. "
                f"{tile - tile % m or m}"
            )
        overlap = tile // 4 if options.overlap is None else options.overlap
        return tile, overlap

    def _check_levels(self, raw: np.ndarray, source: str) -> None:
        """Warn (once per source) when raw values lie outside the model's levels: they are
        clipped by the normalisation."""
        norm = self.normalisation
        if norm.bit_depth is None or source in self._warned:
            return
        top = 2**norm.bit_depth - 1
        lo, hi = float(raw.min()), float(raw.max())
        if lo < 0 or hi > top:
            self._warned.add(source)  # once per file, not once per plane
            _log.warning(
                "%s: values %g..%g lie outside the model's levels 0..%d (%d-bit); they are clipped",
                source,
                lo,
                hi,
                top,
                norm.bit_depth,
            )

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
        self._check_levels(raw, "tiles")
        x = self.normalisation.to_model(raw)[:, None]
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

    def count_tiles(self, shape: tuple[int, int], options: TileOptions | None = None) -> int:
        """How many tiles a plane of ``shape`` (H, W) is cut into with ``options``."""
        tile, overlap = self._tiles(options or TileOptions())
        grid = TileGrid.plan(shape, tile=tile, overlap=overlap, multiple=2**self.levels)
        return len(grid.positions)

    @property
    def dims(self) -> int:
        """2 for a model of planes, 3 for a model of volumes (``model.dims``)."""
        return self.config.model.dims

    def require_2d(self, what: str) -> None:
        """Raise ShapeError naming ``what`` when this is a 3D model (what 3D models cannot
        do yet says so in one line, instead of failing on a tensor's shape)."""
        if self.dims != 2:
            name = self.path.name if self.path is not None else "the model"
            raise ShapeError(
                f"{name}: a 3D model (model.dims 3); {what} takes 2D models for now. "
                "reconstruct, encode, predict and bioimage.io export take 3D models"
            )

    def _tiles_3d(self, options: TileOptions) -> tuple[int, int, int, int]:
        """(tile side, overlap, tile depth, overlap in Z) of a 3D model's tiles."""
        tile, overlap = self._tiles(options)
        depth = options.tile_depth or self.config.data.tile_depth
        m = self.config.model.multiples()[0]
        if depth % m:
            raise ShapeError(
                f"tile depth {depth} is not a multiple of {m} (the product of the model's "
                f"z_strides {self.config.model.strides_z()}); use e.g. {depth - depth % m or m}"
            )
        overlap_z = depth // 4 if options.overlap_z is None else options.overlap_z
        if not 0 <= overlap_z < depth:
            raise ShapeError(f"overlap in Z must be 0..{depth - 1} planes, got {overlap_z}")
        return tile, overlap, depth, overlap_z

    def volume_steps(
        self,
        planes: Iterator[np.ndarray],
        n: int,
        plane_shape: tuple[int, int],
        dtype: np.dtype,
        *,
        options: TileOptions | None = None,
        source: str = "volume",
        reconstruct: bool = True,
        latents: bool = False,
        wanted: set[int] | None = None,
    ) -> Generator[tuple[int, int, list[tuple[int, PlaneResult]]], None, None]:
        """One volume of ``n`` planes (``planes``, in Z order, raw) through a 3D model in 3D
        tiles, slab by slab: yields (tiles done, tiles in all, [(plane index, PlaneResult)]
        of the planes finished since the last yield), the reconstruction in ``dtype`` and the
        latents per level (top first) as the latent plane (C_l, H_l, W_l) that covers each
        plane. Memory: a few slabs of planes (:mod:`.volumes`). ``wanted``: the planes to
        finish (default all)."""
        options = options or TileOptions()
        tile, overlap, depth, overlap_z = self._tiles_3d(options)

        def checked():
            for plane in planes:
                self._check_levels(plane, source)
                yield plane

        steps = iter_volume(
            self.vae,
            checked(),
            n,
            plane_shape,
            options,
            tile=tile,
            overlap=overlap,
            depth=depth,
            overlap_z=overlap_z,
            normalisation=self.normalisation,
            reconstruct=reconstruct,
            latents=latents,
            wanted=wanted,
        )
        for done, total, finished in steps:
            results = [
                (f.k, self._result(f.reconstruction, f.latents, f.std, f.quantiles, dtype, options))
                for f in finished
            ]
            yield done, total, results

    def count_slabs(self, n: int, options: TileOptions | None = None) -> int:
        """How many slabs of 3D tiles a volume of ``n`` planes is run in."""
        _, _, depth, overlap_z = self._tiles_3d(options or TileOptions())
        m = self.config.model.multiples()[0]
        return len(ZGrid.plan(n, depth=depth, overlap=overlap_z, multiple=m).starts)

    def plane_steps(
        self,
        plane: np.ndarray,
        *,
        options: TileOptions | None = None,
        source: str = "plane",
        reconstruct: bool = True,
        latents: bool = False,
    ) -> Generator[tuple[int, int], None, PlaneResult]:
        """One 2D plane (H, W), any size and real dtype, through the model by tiles, step by
        step: yields (tiles done, tiles in all) after every batch of tiles and returns a
        :class:`PlaneResult`: the reconstruction in the plane's dtype and intensity range
        (with ``reconstruct``) and the latents (with ``latents``: per level, top first,
        stitched posterior-mean maps (C_l, H_l, W_l) float32, or (n_tiles, D) tile vectors
        for a global latent). Stop iterating to stop the work (nothing is left behind).

        This is the plane step of the one pipeline (:func:`~microvae.inference.image_steps`);
        whole images go through :meth:`reconstruct`, :meth:`encode` or ``image_steps``."""
        plane = np.asarray(plane)
        if plane.ndim != 2:
            raise ShapeError(f"{source}: expected a 2D plane (H, W), got shape {plane.shape}")
        if np.iscomplexobj(plane) or plane.dtype.kind not in "uif":
            raise ShapeError(f"{source}: {plane.dtype} data cannot be reconstructed")
        options = options or TileOptions()
        tile, overlap = self._tiles(options)
        self._check_levels(plane, source)
        out = yield from iter_tiles(
            self.vae,
            plane,
            options,
            tile=tile,
            overlap=overlap,
            # padded in its own dtype, then normalised: one float32 copy of the plane, not two
            normalisation=self.normalisation,
            reconstruct=reconstruct,
            latents=latents,
        )
        return self._result(
            out.get("reconstruction"),
            out.get("latents"),
            out.get("std"),
            out.get("quantiles"),
            plane.dtype,
            options,
        )

    def _result(self, recon, latents, std, quantiles, dtype, options: TileOptions) -> PlaneResult:
        """A PlaneResult in the input's units from model units: the reconstruction in
        ``dtype``, the spread scaled to raw units and the quantiles mapped, both float32;
        with ``options.calibrated``, the spread and the quantiles' distances from the mean
        widened by the model's :attr:`spread_scale`."""
        norm = self.normalisation
        scale = self.spread_scale if options.calibrated else 1.0
        if std is not None and scale != 1.0:
            std = std * scale
            if quantiles is not None:
                quantiles = recon + scale * (quantiles - recon)
        return PlaneResult(
            None if recon is None else self._from_model(recon, dtype),
            latents,
            None if std is None else (std * norm.raw_per_model_unit()).astype(np.float32),
            None if quantiles is None else norm.from_model_float(quantiles),
        )

    def reconstruct(
        self,
        image: np.ndarray | ImageRecord,
        axes: str | None = None,
        *,
        channel: int | None = None,
        **options,
    ) -> np.ndarray:
        """Reconstruct an image of any size and axes, plane by plane, by tiles.

        Args:
            image: a 2D plane (H, W), an image with ``axes`` (e.g. (Z, Y, X) uint16), or an
                ImageRecord (:func:`microvae.open_image`; read plane by plane).
            axes: its axes (default ``YX`` for 2D arrays; stacks (..., Y, X) otherwise).
            channel: index to take from a C or S axis (the output then has no channel axis).
            **options: fields of :class:`TileOptions` (tile_size, overlap, batch_size,
                output='mean'|'sample', posterior_levels, sample_latents, seed; samples=N
                for the mean of N posterior draws, the MMSE estimate, see :meth:`posterior`).

        Returns:
            An array of the input's shape (less a chosen channel axis) and dtype, in its
            intensity range. Deterministic by default (with ``samples``, given a ``seed``).
        """
        sink = ArraySink("reconstruction")
        rec = as_image(image, axes, channel=channel)
        run_image(self, rec, [sink], options=TileOptions(**options))
        return sink.array

    def posterior(
        self,
        image: np.ndarray | ImageRecord,
        axes: str | None = None,
        *,
        samples: int = 16,
        quantiles: tuple[float, ...] = (),
        channel: int | None = None,
        **options,
    ) -> Posterior:
        """Summarise ``samples`` posterior reconstructions of an image, drawn per tile with
        every latent level sampled from q(z|x) (each draw the likelihood's mean; with
        ``output="sample"`` a likelihood sample), accumulated tile by tile in one pass:
        memory does not grow with ``samples`` (quantiles keep one batch of tiles' draws).
        Arguments as :meth:`reconstruct`; pass ``seed`` for repeatable draws.

        Returns:
            :class:`Posterior`: ``mmse`` (the draws' mean, the input's shape and dtype),
            ``std`` (their per-pixel standard deviation, float32, in the input's units) and
            ``quantiles`` (len(quantiles), *shape) float32, or None. A model calibrated by
            ``microvae calibrate`` widens ``std`` and the quantiles' distances from the mean
            by its :attr:`spread_scale`; ``calibrated=False`` gives the draws' own.
        """
        if samples < 2:
            raise ValueError(f"posterior needs samples >= 2 to measure a spread, got {samples}")
        opts = TileOptions(samples=samples, quantiles=tuple(quantiles), **options)
        rec = as_image(image, axes, channel=channel)
        sinks = [ArraySink("reconstruction"), ArraySink("std")]
        if quantiles:
            sinks.append(QuantileSink(len(quantiles)))
        run_image(self, rec, sinks, options=opts)
        return Posterior(sinks[0].array, sinks[1].array, sinks[2].array if quantiles else None)

    def draws(
        self,
        image: np.ndarray | ImageRecord,
        axes: str | None = None,
        *,
        samples: int = 16,
        seed: int = 0,
        channel: int | None = None,
        **options,
    ) -> Iterator[np.ndarray]:
        """Yield ``samples`` posterior draws of a whole image, one at a time (memory: one
        image), each with every latent level sampled from q(z|x) per tile (draw k seeded
        ``seed + k``) and the likelihood's mean; where tiles overlap their draws are blended,
        which smooths a draw a little there. Arguments as :meth:`reconstruct`; each draw has
        the input's shape and dtype. For the draws' mean and spread without keeping them, use
        :meth:`posterior`."""
        if samples < 1:
            raise ValueError(f"draws needs samples >= 1, got {samples}")
        self._tiles(TileOptions(samples=2))  # refuses a model that cannot sample, in one line
        for k in range(samples):
            yield self.reconstruct(
                image, axes, channel=channel, sample_latents=True, seed=seed + k, **options
            )

    def encode(
        self,
        image: np.ndarray | ImageRecord,
        axes: str | None = None,
        *,
        channel: int | None = None,
        **options,
    ) -> dict[str, np.ndarray | list]:
        """Embeddings of every plane: ``embedding`` (*plane dims, 2 * sum C_l), the pooled
        posterior means of :func:`~microvae.inference.pooling.pool_latents`, and
        ``latents``: per plane (C order), the posterior-mean maps of every level (top first,
        as :meth:`plane_steps` returns them). Arguments as :meth:`reconstruct`."""
        rec = as_image(image, axes, channel=channel)
        maps, pooled = LatentSink(), EmbeddingSink()
        run_image(self, rec, [maps, pooled], options=TileOptions(**options))
        sizes = [rec.shape[rec.axes.index(a)] for a in rec.plane_axes]
        return {"embedding": pooled.vectors.reshape(*sizes, -1), "latents": maps.maps}

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
            "calibration": self.calibration,
        }


def load_model(path: str | os.PathLike, *, device: str = "cpu") -> TrainedModel:
    """Load ``RUN_DIR/model.pt`` safely (no code in the file runs); ``device``: cpu, cuda, auto.

    Raises:
        ModelFileError: missing, damaged, foreign or unsafe file.
    """
    return TrainedModel.from_file(path, device=device)
