"""Batch processing on a Dask cluster: files are the units of work, and each worker loads the
model once.

``connect("local:N")`` starts N local worker processes; ``connect("tcp://HOST:PORT")`` joins
the scheduler of a running cluster (``dask scheduler`` / ``dask worker``, or dask-jobqueue on
SLURM). A worker runs the same per-file code as a serial run (:func:`.stacks.process_file`),
with the same atomic writes and per-file failure isolation. If a worker dies, the scheduler
gives its files to another worker, and those files start again from their first plane (or
from the planes an OME-Zarr output holds); each task counts its starts in a marker file in the
output folder, so the summary says how many workers were lost.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Collection
from pathlib import Path

from ..errors import MicrovaeError
from ..extras import require
from .results import FileResult

__all__ = ["connect", "run_on_cluster"]

_log = logging.getLogger("microvae.batch")

# per worker process: the models it has loaded, by (file, device)
_MODELS: dict = {}


def connect(spec: str, *, timeout: str = "10s"):
    """A ``distributed.Client`` for ``local:N`` (N worker processes on this machine, one
    thread each) or a scheduler address (``tcp://HOST:PORT``, ``tls://...``; given up after
    ``timeout``).

    Raises:
        MicrovaeError: a malformed spec, or a scheduler that cannot be reached (naming it).
    """
    distributed = require("distributed", "dask", "--dask")
    Client, LocalCluster = distributed.Client, distributed.LocalCluster
    if spec.startswith("local:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise MicrovaeError(f"--dask {spec}: local:N needs N >= 1 workers, e.g. local:4")
        # one thread per worker: each worker's torch uses the cores it is given
        threads = max(1, (os.cpu_count() or 1) // n)
        # a worker that is killed leaves its semaphores to multiprocessing's resource
        # tracker, which frees them at exit with a warning of its own; the summary already
        # says the worker was lost. The tracker process, started with the workers, takes
        # its warning filters from this process's -W options.
        quiet = "ignore:resource_tracker:UserWarning"
        added = quiet not in sys.warnoptions
        if added:
            sys.warnoptions.append(quiet)
        try:
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env={"OMP_NUM_THREADS": str(threads)},
                silence_logs=logging.ERROR,
            )
        finally:
            if added:
                sys.warnoptions.remove(quiet)
        # not the process's default dask scheduler: other dask code here keeps its own
        return Client(cluster, set_as_default=False)
    if "://" not in spec:
        raise MicrovaeError(
            f"--dask {spec!r}: give local:N for N local workers or the scheduler's address, "
            "e.g. tcp://10.0.0.5:8786"
        )
    try:
        return Client(spec, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise MicrovaeError(
            f"{spec}: cannot reach the Dask scheduler ({exc}); check the address and that "
            "the scheduler runs (dask scheduler, or the cluster's job)"
        ) from None


def _worker_model(path: str, device: str):
    from ..inference import load_model

    key = (path, device)
    if key not in _MODELS:
        _MODELS[key] = load_model(path, device=device)
    return _MODELS[key]


_TASKS = ".microvae-tasks"  # in the output folder: a marker per task that has started


def _attempt(out_dir: Path, task: str) -> int:
    """How many times task ``task`` started before (0: this is its first start). The
    scheduler reruns a task whose worker was lost without telling the client; a marker file
    in the (shared) output folder, counting the starts, tells it."""
    folder = out_dir / _TASKS
    folder.mkdir(exist_ok=True)
    marker = folder / task
    try:
        before = int(marker.read_text() or 0)
    except (FileNotFoundError, ValueError):
        before = 0
    marker.write_text(str(before + 1))
    return before


def _run_file(
    work: Callable,
    model_path: str,
    device: str,
    path: Path,
    out_dir: Path,
    kwargs: dict,
    after: list = (),
    task: str = "",
):
    """One unit of work on a worker: ``work(model, path, out_dir, **kwargs)`` on a file, or a
    block of one (``kwargs`` say which). ``after``: the results of the blocks this one closes
    (the first that failed is the file's failure). ``task``: the task's key, for counting
    its starts (``.reruns``)."""
    reruns = _attempt(out_dir, task) if task else 0
    for earlier in after:
        if earlier.status == "failed":
            return earlier
    model = _worker_model(model_path, device)
    try:
        result = work(model, path, out_dir, **kwargs)
    except MicrovaeError as exc:  # the file fails alone, as in a serial run
        result = FileResult(path, "failed", str(exc))
    result.reruns = reruns
    return result


def _n_planes(path: Path, kwargs: dict) -> int:
    from ..io import open_image

    try:
        with open_image(path, channel=kwargs["channel"], axes=kwargs["axes"]) as rec:  # metadata
            return rec.n_planes
    except MicrovaeError:
        return 1  # a whole-file task, which reports the error


def run_on_cluster(
    spec: str,
    model_path: Path,
    device: str,
    paths: list[Path],
    out_dir: Path,
    kwargs: dict,
    *,
    block: int = 0,
    on_done: Callable | None = None,
    fresh: Collection[Path] = (),
    work: Callable,
) -> list:
    """Process ``paths`` on the cluster of ``spec``, one task per file, or per ``block``
    planes of a stack with more (the first block alone first, as it makes the outputs; then
    the others in parallel; then one task that closes the outputs); FileResults in the order
    of ``paths``, each with ``reruns``: how often a worker was lost while it held the file
    (the scheduler gave the work to another). ``on_done(result)`` is called as each file
    finishes. ``fresh``: files whose earlier outputs are replaced, not resumed. ``work``: the
    unit of work, :func:`microvae.batch.stacks.process_file` (a module-level function, which
    Dask sends to the workers by name)."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    client = connect(spec)

    def submit(path: Path, extra: dict, after: list = ()):
        key = f"microvae-{path.name}-{uuid.uuid4().hex[:8]}"
        first = {"resume": False} if path in fresh and "tag" not in extra else {}
        return client.submit(
            _run_file,
            work,
            str(model_path),
            device,
            path,
            out_dir,
            {**kwargs, **first, **extra},
            list(after),
            key,
            key=key,
            pure=False,
        )

    try:
        results: list = [None] * len(paths)
        # future -> (file index, stage): "file" (a whole file), "first" (the first block),
        # "block" (another), "close" (the task that closes a file's outputs)
        stage: dict = {}
        pending: dict[int, set] = {}  # file index -> its blocks still running
        blocks: dict[int, list] = {}  # file index -> the block results so far
        lost: dict[int, int] = {}  # file index -> workers lost while they held its tasks
        queue = as_completed(loop=client.loop)
        for i, path in enumerate(paths):
            n = _n_planes(path, kwargs) if block else 1
            if not block or n <= block:
                f = submit(path, {})
                stage[f] = (i, "file")
            else:
                f = submit(path, {"planes": range(0, block), "finish": False})
                stage[f] = (i, "first", n)
            queue.add(f)
        for future in queue:
            i, kind, *rest = stage.pop(future)
            path = paths[i]
            try:
                result = future.result()
            except KilledWorker as exc:  # the scheduler gave up on it: workers kept dying
                result = FileResult(
                    path,
                    "failed",
                    f"{path.name}: every Dask worker that took it was lost ({exc}); look at "
                    "the workers' logs (memory?), then run again with --resume",
                )
            if result.reruns:
                _log.warning(
                    "%s: a Dask worker was lost while it held this file; the scheduler gave "
                    "the work to another",
                    path.name,
                )
                lost[i] = lost.get(i, 0) + result.reruns
            if kind in ("first", "block"):
                blocks.setdefault(i, []).append(result)
                if kind == "first" and result.status != "failed":
                    # the outputs exist now: the other blocks, on any worker (not passed the
                    # first's result, which would keep them where it lies)
                    n = rest[0]
                    pending[i] = set()
                    for a in range(block, n, block):
                        extra = {
                            "planes": range(a, min(a + block, n)),
                            "finish": False,
                            "tag": str(a),
                            "resume": True,  # the outputs the first block made
                        }
                        f = submit(path, extra)
                        stage[f] = (i, "block")
                        pending[i].add(f)
                        queue.add(f)
                pending.get(i, set()).discard(future)
                if not pending.get(i):  # every block is in: close the outputs
                    closing = {"planes": (), "finish": True, "resume": True}
                    f = submit(path, closing, blocks.pop(i))
                    stage[f] = (i, "close")
                    queue.add(f)
                continue
            result.reruns = lost.pop(i, 0)  # the file's blocks' and its own
            results[i] = result
            if result.status == "failed":
                _log.error("microvae: error: %s", result.message)
            if on_done is not None:
                on_done(result)
        return results
    finally:
        shutil.rmtree(out_dir / _TASKS, ignore_errors=True)
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and spec.startswith("local:"):
            cluster.close()
