"""The one plane pipeline: an image's planes through a trained model into sinks.

Every consumer of a trained model (the Python API, ``microvae predict``, ``microvae evaluate``
and the napari plugin) runs images through :func:`image_steps`: it checks the image once,
runs each plane through :meth:`TrainedModel.plane_steps
<microvae.inference.TrainedModel.plane_steps>` (tiles -> network -> stitched reconstruction
and latents) and hands every finished plane to small sinks, one per output (an array, a file,
metric rows). It yields :class:`Progress` after every batch of tiles, so a caller can show
progress and stop between batches; stopping (or an error) aborts every sink, so nothing
half-done is left that looks complete.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Generator, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from tqdm import tqdm

from ..errors import AxesError, ShapeError
from ..io import ImageRecord
from .pooling import pool_latents
from .tiled import TileOptions

if TYPE_CHECKING:  # the model module imports this one
    from .model import TrainedModel

__all__ = [
    "ArraySink",
    "EmbeddingSink",
    "ImageInfo",
    "LatentSink",
    "MetricRows",
    "MetricsFn",
    "PLANE_OUTPUTS",
    "PlaneOutput",
    "PlaneSink",
    "QuantileSink",
    "Progress",
    "as_image",
    "count_steps",
    "deliver",
    "image_steps",
    "result_of",
    "run_image",
]

_log = logging.getLogger("microvae.inference")
T = TypeVar("T")

# f(reference, reconstruction, *, pixel_size, unit) -> {name: value}; pixel_size is the X
# pixel size in unit, or None when the image does not say (microvae.metrics.basic_metrics,
# microvae.metrics.fine_structure_metrics)
MetricsFn = Callable[..., dict[str, float]]

# letters for the leading axes of an array given without axes (the plugin's layers): any
# letters but the channel ones work, each leading axis is a stack of planes
_STACK_LETTERS = "TZQ"


@dataclass(frozen=True)
class Progress:
    """Where the work is: plane ``plane`` (0-based) of ``planes``, ``tiles_done`` of its
    ``tiles`` tiles."""

    plane: int
    planes: int
    tiles_done: int
    tiles: int


@dataclass(frozen=True)
class ImageInfo:
    """What a sink needs to know of the image before its first plane."""

    name: str
    axes: str
    shape: tuple[int, ...]
    dtype: np.dtype
    plane_axes: str
    n_planes: int
    plane_shape: tuple[int, int]
    pixel_size: dict[str, float] = field(default_factory=dict)
    unit: str | None = None

    @classmethod
    def of(cls, rec: ImageRecord) -> ImageInfo:
        return cls(
            name=rec.name,
            axes=rec.axes,
            shape=tuple(rec.shape),
            dtype=np.dtype(rec.dtype),
            plane_axes=rec.plane_axes,
            n_planes=rec.n_planes,
            plane_shape=rec.plane_shape,
            pixel_size=dict(rec.pixel_size),
            unit=rec.unit,
        )

    def where(self, position: tuple[int, ...]) -> tuple:
        """The numpy index of the plane at ``position`` (over ``plane_axes``) in an array of
        ``shape``: the plane's Y and X in full, 0 on any other axis (a singleton)."""
        return tuple(
            position[self.plane_axes.index(a)]
            if a in self.plane_axes
            else (slice(None) if a in "YX" else 0)
            for a in self.axes
        )


@dataclass
class PlaneOutput:
    """One finished plane: its C-order ``index`` among the image's planes, its ``position``
    over the plane axes, the input ``plane`` (H, W) raw, the ``reconstruction`` (H, W) in
    the input's dtype (None when not asked), and the ``latents`` (None when not asked): per
    level, top first, stitched posterior-mean maps (C_l, H_l, W_l) float32, or (n_tiles, D)
    tile vectors for a global latent. With ``TileOptions.samples`` > 1 the reconstruction is
    the mean of the posterior draws, ``std`` their standard deviation (float32) and
    ``quantiles`` (Q, H, W) float32 those asked, in the input's units."""

    index: int
    position: tuple[int, ...]
    plane: np.ndarray
    reconstruction: np.ndarray | None
    latents: list[np.ndarray] | None
    std: np.ndarray | None = None  # sampling: the draws' standard deviation, raw units
    quantiles: np.ndarray | None = None  # (Q, H, W) raw units, when asked


class PlaneSink:
    """Receives an image's planes as they finish: ``start`` once, ``add`` per plane in order,
    then ``close`` when every plane is in, or ``abort`` when the work failed or was stopped
    (then nothing may be left that looks complete)."""

    needs_reconstruction = True  # what the sink reads of each PlaneOutput
    needs_latents = False

    def start(self, info: ImageInfo) -> None:
        self.info = info

    def done_planes(self) -> set[int]:
        """Planes this sink already holds from an earlier, stopped run (after ``start``): the
        pipeline skips the planes every sink holds. A sink that cannot resume holds none."""
        return set()

    def add(self, out: PlaneOutput) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Every plane is in."""

    def abort(self) -> None:
        """The work failed or was stopped."""


class ArraySink(PlaneSink):
    """The reconstruction (``what="reconstruction"``: the input's shape and dtype), the
    absolute error |input - reconstruction| (``what="error"``: float32) or, when sampling,
    the draws' standard deviation (``what="std"``: float32) as an array in memory,
    ``.array``."""

    def __init__(self, what: str = "reconstruction"):
        if what not in PLANE_OUTPUTS:
            raise ValueError(f"what must be one of {', '.join(PLANE_OUTPUTS)}, got {what!r}")
        self.what = what
        self.array: np.ndarray | None = None

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        dtype = info.dtype if self.what == "reconstruction" else np.float32
        self.array = np.empty(info.shape, dtype)

    def add(self, out: PlaneOutput) -> None:
        self.array[self.info.where(out.position)] = plane_output(out, self.what)


# what a finished plane gives as an image of the input's shape (plane_output)
PLANE_OUTPUTS = ("reconstruction", "error", "std")


class QuantileSink(PlaneSink):
    """The quantiles of the posterior draws (``TileOptions.quantiles``) as an array in memory,
    ``.array`` (Q, *the input's shape) float32 in its units."""

    def __init__(self, n: int):
        self.n = n
        self.array: np.ndarray | None = None

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        self.array = np.empty((self.n, *info.shape), np.float32)

    def add(self, out: PlaneOutput) -> None:
        where = self.info.where(out.position)
        for i, q in enumerate(out.quantiles):
            self.array[i][where] = q


def plane_output(out: PlaneOutput, what: str) -> np.ndarray:
    """The reconstruction of a finished plane, its absolute error (float32), the posterior
    draws' standard deviation (``std``) or their i-th quantile asked (``quantile_{i}``; both
    float32, sampling only)."""
    if what.startswith("quantile_"):
        if out.quantiles is None:
            raise ValueError("quantiles need posterior samples with quantiles asked")
        return out.quantiles[int(what.removeprefix("quantile_"))]
    if what == "error":
        return np.abs(out.plane.astype(np.float32) - out.reconstruction.astype(np.float32))
    if what == "std":
        if out.std is None:
            raise ValueError("a standard deviation needs posterior samples (samples >= 2)")
        return out.std
    return out.reconstruction


class LatentSink(PlaneSink):
    """Per plane, the latents of every level (``.maps``: a list over planes)."""

    needs_reconstruction = False
    needs_latents = True

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        self.maps: list[list[np.ndarray]] = []

    def add(self, out: PlaneOutput) -> None:
        self.maps.append(out.latents)


class EmbeddingSink(PlaneSink):
    """Per plane, the pooled embedding (:func:`~microvae.inference.pooling.pool_latents`):
    ``.vectors`` (planes, 2 * sum C_l) float32 and ``.positions`` (planes, len(plane_axes))
    int64 once closed."""

    needs_reconstruction = False
    needs_latents = True

    def start(self, info: ImageInfo) -> None:
        super().start(info)
        self._vectors: list[np.ndarray] = []
        self._positions: list[tuple[int, ...]] = []

    def add(self, out: PlaneOutput) -> None:
        self._vectors.append(pool_latents(out.latents, batched=False))
        self._positions.append(out.position)

    @property
    def vectors(self) -> np.ndarray:
        return np.stack(self._vectors).astype(np.float32)

    @property
    def positions(self) -> np.ndarray:
        return np.asarray(self._positions, np.int64).reshape(len(self._positions), -1)


class MetricRows(PlaneSink):
    """One row per plane: ``file``, ``plane`` (the C-order index), the plane axes' indices
    and ``metrics(input, reconstruction, pixel_size=..., unit=...)`` (none without a metrics
    function) (``.rows``), and ``note``, why a metric is NaN, where one is; ``.values``: the
    metrics alone, per plane."""

    def __init__(self, metrics: MetricsFn | None):
        self.metrics = metrics
        self.needs_reconstruction = metrics is not None
        self.rows: list[dict] = []
        self.values: list[dict] = []
        self._said: set[str] = set()

    def add(self, out: PlaneOutput) -> None:
        info = self.info
        values = {}
        if self.metrics is not None:
            values = self.metrics(
                out.plane,
                out.reconstruction,
                pixel_size=info.pixel_size.get("X"),
                unit=info.unit or "um",
            )
        where = {"file": info.name, "plane": out.index, **dict(zip(info.plane_axes, out.position))}
        self.values.append(values)
        row = {**where, **values}
        notes = getattr(values, "notes", None)  # why a metric is NaN (microvae.metrics.Metrics)
        if notes:
            row["note"] = "; ".join(notes)
            if row["note"] not in self._said:  # said once per image, each plane's row keeps it
                self._said.add(row["note"])
                _log.warning("%s, plane %d: %s", info.name, out.index, row["note"])
        self.rows.append(row)


def as_image(
    data: ImageRecord | np.ndarray,
    axes: str | None = None,
    *,
    channel: int | None = None,
    stacks: bool = False,
) -> ImageRecord:
    """An image for :func:`image_steps`: an ImageRecord as it is, or an array with its
    ``axes`` (default ``YX`` for 2D; an array of more dimensions needs its axes, unless
    ``stacks``: then (..., Y, X) are stacks of planes without a channel axis, as napari layers
    hold them)."""
    if isinstance(data, ImageRecord):
        return data
    array = np.asarray(data)
    if axes is None:
        lead = array.ndim - 2
        if lead and not stacks:
            raise AxesError(f"array of shape {array.shape}: pass axes=... (e.g. 'ZYX')")
        if lead < 0 or lead > len(_STACK_LETTERS):
            raise ShapeError(
                f"array of shape {array.shape}: need 2 to {2 + len(_STACK_LETTERS)} "
                "dimensions, (..., Y, X)"
            )
        axes = _STACK_LETTERS[len(_STACK_LETTERS) - lead :] + "YX"
    return ImageRecord.from_array(array, axes, channel=channel)


def image_steps(
    model: TrainedModel,
    image: ImageRecord | np.ndarray,
    sinks: Sequence[PlaneSink],
    *,
    options: TileOptions | None = None,
    source: str | None = None,
    planes: Collection[int] | None = None,
    finish: bool = True,
) -> Generator[Progress, None, None]:
    """Run every plane of ``image`` (or those of ``planes``, C-order indices: a block of a
    stack shared between processes) through ``model`` into ``sinks``; yields
    :class:`Progress` after every batch of tiles.

    The image is checked once (one channel, finite values, the model's input range on the
    first plane it runs); reconstructions and latents are computed only when a sink needs
    them, in one pass over the tiles; planes that every sink already holds from a stopped
    run (:meth:`PlaneSink.done_planes`) are skipped. Stop iterating (``close()``) to stop
    between batches: every sink is then aborted, as on an error. ``source`` names the image
    in messages (default: its file name). ``finish=False``: the sinks are left open, neither
    closed nor aborted (a process that wrote its block of planes; another closes them).
    """
    rec = as_image(image)
    rec.require_single_channel()
    source = source or rec.name
    options = options or TileOptions()
    wants = {
        "reconstruct": any(s.needs_reconstruction for s in sinks),
        "latents": any(s.needs_latents for s in sinks),
    }
    info = ImageInfo.of(rec)
    with _feeding(sinks, info, source, finish):
        todo = _todo(sinks, info, planes)
        if model.dims == 3:
            yield from _volume_steps(model, rec, sinks, options, source, todo, wants)
            todo = set()  # every plane went through the volumes
        sizes = tuple(rec.shape[rec.axes.index(a)] for a in rec.plane_axes)
        for n, (position, plane) in enumerate(rec.iter_planes(only=todo)):
            k = int(np.ravel_multi_index(position, sizes)) if sizes else 0
            if n == 0:  # the first plane stands for the image: no extra read
                model.check_input(plane, source)
            steps = model.plane_steps(plane, options=options, source=source, **wants)
            result = yield from _relay(steps, k, info.n_planes)
            out = _output(k, position, plane, result)
            for sink in sinks:
                sink.add(out)


def deliver(
    image: ImageRecord | np.ndarray,
    sinks: Sequence[PlaneSink],
    result: Callable[[int], Any],
    *,
    source: str | None = None,
) -> None:
    """Hand an image's planes, reconstructed already, to ``sinks`` as :func:`image_steps`
    would: ``result(k)`` gives plane k's (C order) :class:`~.model.PlaneResult` (e.g. the
    mean and spread of whole-image posterior draws that were kept for another use)."""
    rec = as_image(image)
    info = ImageInfo.of(rec)
    sizes = tuple(rec.shape[rec.axes.index(a)] for a in rec.plane_axes)
    with _feeding(sinks, info, source or rec.name, True):
        for position, plane in rec.iter_planes():
            k = int(np.ravel_multi_index(position, sizes)) if sizes else 0
            out = _output(k, position, plane, result(k))
            for sink in sinks:
                sink.add(out)


@contextmanager
def _feeding(sinks: Sequence[PlaneSink], info: ImageInfo, source: str, finish: bool):
    """Start every sink; close them when the work is done (``finish``), or abort every one
    started on an error, Ctrl-C or a stopped generator (GeneratorExit)."""
    started: list[PlaneSink] = []
    try:
        for sink in sinks:
            sink.start(info)
            started.append(sink)
        yield
        if finish:
            for sink in sinks:
                sink.close()
    except BaseException:
        _abort(started, source)
        raise


def _volume_steps(model, rec: ImageRecord, sinks, options, source: str, todo, wants):
    """A 3D model's part of :func:`image_steps`: every volume (one per index over the plane
    axes but Z) through :meth:`TrainedModel.volume_steps`; each finished plane goes to the
    sinks as a 2D model's would, with the latent planes that cover it."""
    axes = rec.plane_axes
    if "Z" not in axes and axes == "Q":
        # one stack axis the image does not name (a bare page stack, a napari layer): as the
        # 2D pipeline reads its planes one by one, a 3D model reads it as Z
        _log.warning(
            "%s: the image does not name its stack axis (axes %s); a 3D model reads it as Z "
            "(pass axes=..., e.g. TYX, if it is not)",
            source,
            rec.axes,
        )
        axes = "Z"
    else:
        rec.require_z()
    sizes = tuple(rec.shape[rec.axes.index(a)] for a in rec.plane_axes)
    z = axes.index("Z")
    first = True
    for index in np.ndindex(*(n for a, n in zip(axes, sizes) if a != "Z")):
        positions = [(*index[:z], kz, *index[z:]) for kz in range(sizes[z])]
        numbers = [int(np.ravel_multi_index(p, sizes)) for p in positions]
        wanted = {kz for kz, num in enumerate(numbers) if todo is None or num in todo}
        if not wanted:
            continue
        raw: dict[int, np.ndarray] = {}  # the input planes read and not yet finished

        def planes(numbers=numbers, wanted=wanted, raw=raw):
            nonlocal first
            for kz, (_, plane) in enumerate(rec.iter_planes(only=set(numbers))):
                if first:  # the first plane stands for the image: no extra read
                    model.check_input(plane, source)
                    first = False
                if kz in wanted:
                    raw[kz] = plane
                yield plane

        steps = model.volume_steps(
            planes(),
            sizes[z],
            rec.plane_shape,
            rec.dtype,
            options=options,
            source=source,
            wanted=wanted,
            **wants,
        )
        last = numbers[min(wanted)]
        for done, total, finished in steps:
            for kz, result in finished:
                out = _output(numbers[kz], positions[kz], raw.pop(kz), result)
                for sink in sinks:
                    sink.add(out)
                last = numbers[kz]
            yield Progress(last, rec.n_planes, done, total)


def _output(index: int, position: tuple[int, ...], plane: np.ndarray, r) -> PlaneOutput:
    """A finished plane for the sinks, from the model's :class:`PlaneResult` ``r``."""
    return PlaneOutput(index, position, plane, r.reconstruction, r.latents, r.std, r.quantiles)


def _todo(sinks: Sequence[PlaneSink], info: ImageInfo, planes) -> set[int] | None:
    """The planes to run (None: all): those of ``planes`` that not every sink holds yet from
    a stopped run. Skipped planes are not read."""
    skip = set.intersection(*(s.done_planes() for s in sinks)) if sinks else set()
    if planes is not None:
        skip |= set(range(info.n_planes)) - set(planes)
    return None if not skip else set(range(info.n_planes)) - skip


def _relay(steps: Generator, plane: int, n_planes: int):
    """A plane's (tiles done, tiles) steps as :class:`Progress`; returns the plane's result."""
    while True:
        try:
            done, total = next(steps)
        except StopIteration as finished:
            return finished.value
        yield Progress(plane, n_planes, done, total)


def _abort(started: Sequence[PlaneSink], source: str) -> None:
    """Abort every started sink; a sink that fails to clean up is logged, not raised: the
    first error is the one to report."""
    for sink in started:
        try:
            sink.abort()
        except Exception as exc:
            _log.error("%s: could not clean up %s (%s)", source, type(sink).__name__, exc)


def result_of(steps: Generator[Any, None, T]) -> T:
    """Run a step generator (e.g. :meth:`TrainedModel.plane_steps`) to its end: its value."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def run_image(
    model: TrainedModel,
    image: ImageRecord | np.ndarray,
    sinks: Sequence[PlaneSink],
    *,
    options: TileOptions | None = None,
    source: str | None = None,
    progress: bool = False,
    planes: Collection[int] | None = None,
    finish: bool = True,
) -> None:
    """:func:`image_steps` to its end, with a progress bar over planes (``progress``, for
    images of more than one plane)."""
    rec = as_image(image)
    n = rec.n_planes
    with tqdm(
        total=n, desc=source or rec.name, unit="plane", leave=False, disable=not progress or n < 2
    ) as bar:
        last = -1
        steps = image_steps(
            model, rec, sinks, options=options, source=source, planes=planes, finish=finish
        )
        for step in steps:
            if step.tiles_done == step.tiles:
                bar.update(step.plane - last)  # planes skipped on resume count as done
                last = step.plane


def count_steps(
    model: TrainedModel, shape: Iterable[int], options: TileOptions | None = None
) -> int:
    """How many :class:`Progress` steps :func:`image_steps` yields for an image of ``shape``
    (..., H, W): planes x batches of tiles per plane; for a 3D model, whose ``shape`` is
    (..., Z, Y, X), volumes x slabs x batches of tiles per slab."""
    shape = tuple(shape)
    options = options or TileOptions()
    per_plane = math.ceil(model.count_tiles(shape[-2:], options) / options.tiles_per_batch())
    if model.dims == 3:
        return math.prod(shape[:-3]) * model.count_slabs(shape[-3], options) * per_plane
    return math.prod(shape[:-2]) * per_plane
