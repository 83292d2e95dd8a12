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
    Client = distributed.Client
    if spec.startswith("local:"):
        # not the process's default dask scheduler: other dask code here keeps its own
        return distributed.Client(_local_cluster(distributed, spec), set_as_default=False)
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


def _local_cluster(distributed, spec: str):
    """``local:N``: N worker processes on this machine, one thread each, sharing its cores."""
    try:
        n = int(spec.split(":", 1)[1])
    except ValueError:
        n = 0
    if n < 1:
        raise MicrovaeError(f"--dask {spec}: local:N needs N >= 1 workers, e.g. local:4")
    # one thread per worker: each worker's torch uses the cores it is given
    threads = max(1, (os.cpu_count() or 1) // n)
    # a worker that is killed leaves its semaphores to multiprocessing's resource tracker,
    # which frees them at exit with a warning of its own; the summary already says the
    # worker was lost. The tracker process, started with the workers, takes its warning
    # filters from this process's -W options.
    quiet = "ignore:resource_tracker:UserWarning"
    added = quiet not in sys.warnoptions
    if added:
        sys.warnoptions.append(quiet)
    try:
        return distributed.LocalCluster(
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

    client = connect(spec)
    try:
        run = _ClusterRun(client, work, model_path, device, paths, out_dir, kwargs, block, fresh)
        run.queue = as_completed(loop=client.loop)
        for i, path in enumerate(paths):
            run.start(i, path)
        for future in run.queue:
            result = run.finished(future)
            if result is not None and on_done is not None:
                on_done(result)
        return run.results
    finally:
        shutil.rmtree(out_dir / _TASKS, ignore_errors=True)
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None and spec.startswith("local:"):
            cluster.close()


class _ClusterRun:
    """The tasks of one run and what became of them. A file is one task ("file"), or blocks
    of planes: the first ("first", which makes the outputs), the others ("block", in
    parallel), then one that closes the outputs ("close")."""

    def __init__(self, client, work, model_path, device, paths, out_dir, kwargs, block, fresh):
        self.client, self.work, self.model_path, self.device = client, work, model_path, device
        self.paths, self.out_dir, self.kwargs, self.block = paths, out_dir, kwargs, block
        self.fresh = set(fresh)
        self.results: list = [None] * len(paths)
        self.stage: dict = {}  # future -> (file index, kind[, planes])
        self.pending: dict[int, set] = {}  # file index -> its blocks still running
        self.blocks: dict[int, list] = {}  # file index -> the block results so far
        self.lost: dict[int, int] = {}  # file index -> workers lost while they held it
        self.queue = None

    def submit(self, i: int, kind: str, extra: dict, after: list = (), n: int = 0):
        """Submit a task of file ``i`` (``n``: its planes, for a first block); its future."""
        path = self.paths[i]
        key = f"microvae-{path.name}-{uuid.uuid4().hex[:8]}"
        first = {"resume": False} if path in self.fresh and kind in ("file", "first") else {}
        future = self.client.submit(
            _run_file,
            self.work,
            str(self.model_path),
            self.device,
            path,
            self.out_dir,
            {**self.kwargs, **first, **extra},
            list(after),
            key,
            key=key,
            pure=False,
        )
        self.stage[future] = (i, kind, n)
        self.queue.add(future)
        return future

    def start(self, i: int, path: Path) -> None:
        n = _n_planes(path, self.kwargs) if self.block else 1
        if not self.block or n <= self.block:
            self.submit(i, "file", {})
        else:
            self.submit(i, "first", {"planes": range(0, self.block), "finish": False}, n=n)

    def finished(self, future) -> FileResult | None:
        """Take a finished task: a file's result once it is done (None for a block)."""
        from distributed.scheduler import KilledWorker

        i, kind, n = self.stage.pop(future)
        path = self.paths[i]
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
                "%s: a Dask worker was lost while it held this file; the scheduler gave the "
                "work to another",
                path.name,
            )
            self.lost[i] = self.lost.get(i, 0) + result.reruns
        if kind in ("first", "block"):
            self._block_done(i, kind, n, future, result)
            return None
        result.reruns = self.lost.pop(i, 0)  # the file's blocks' and its own
        self.results[i] = result
        if result.status == "failed":
            _log.error("microvae: error: %s", result.message)
        return result

    def _block_done(self, i: int, kind: str, n: int, future, result: FileResult) -> None:
        self.blocks.setdefault(i, []).append(result)
        if kind == "first" and result.status != "failed":
            # the outputs exist now: the other blocks, on any worker (not passed the first's
            # result, which would keep them where it lies)
            self.pending[i] = set()
            for a in range(self.block, n, self.block):
                extra = {
                    "planes": range(a, min(a + self.block, n)),
                    "finish": False,
                    "tag": str(a),
                    "resume": True,  # the outputs the first block made
                }
                self.pending[i].add(self.submit(i, "block", extra))
        self.pending.get(i, set()).discard(future)
        if not self.pending.get(i):  # every block is in: close the outputs
            closing = {"planes": (), "finish": True, "resume": True}
            self.submit(i, "close", closing, self.blocks.pop(i))
