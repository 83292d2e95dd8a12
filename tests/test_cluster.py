"""Batch processing on Dask: a LocalCluster of 2 workers gives the serial run's outputs, and a
worker killed mid-run loses no file."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from microvae.api import process_stacks
from microvae.batch.cluster import connect
from microvae.errors import MicrovaeError
from microvae.inference import load_model
from microvae.io import read_image, write_image
from microvae.synthetic import generate

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(600)
OUTPUTS = ["reconstruction", "embedding", "error"]


@pytest.fixture(scope="module")
def cluster():
    # the workers' torch with this process's thread count: CPU convolutions sum in an order
    # that depends on it, and the outputs are compared bit for bit with a serial run here
    threads = str(torch.get_num_threads())
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
    ) as c:
        yield c


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stacks")
    for i in range(6):
        write_image(folder / f"s{i}.tif", generate(shape=(6, 48, 64), seed=i).image, axes="ZYX")
    return folder


@pytest.fixture(scope="module")
def serial(tmp_path_factory, stacks, tiny_model_path) -> Path:
    out = tmp_path_factory.mktemp("serial")
    process_stacks(load_model(tiny_model_path), stacks, out, outputs=OUTPUTS, progress=False)
    return out


def _same_outputs(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())  # nothing partial, nothing missing
    for name in names:
        if name.endswith(".tif"):
            np.testing.assert_array_equal(read_image(a / name).data, read_image(b / name).data)
        elif name.endswith(".npz"):
            np.testing.assert_array_equal(
                np.load(a / name)["embedding"], np.load(b / name)["embedding"]
            )
        else:
            assert list(csv.DictReader(open(a / name))) == list(csv.DictReader(open(b / name)))


def test_two_workers_give_the_serial_outputs(tmp_path, cluster, stacks, serial, tiny_model_path):
    model = load_model(tiny_model_path)
    out = tmp_path / "dask"
    summary = process_stacks(
        model, stacks, out, outputs=OUTPUTS, dask=cluster.scheduler_address, progress=False
    )
    assert [r.status for r in summary.results] == ["done"] * 6
    _same_outputs(out, serial)
    # both workers took files; each loaded the model once, whatever its number of files
    with distributed.Client(cluster, set_as_default=False) as client:
        loaded = client.run(
            lambda: len(__import__("microvae.batch.cluster", fromlist=["_MODELS"])._MODELS)
        )
    assert sorted(loaded.values()) == [1, 1]


def test_a_killed_worker_loses_no_file(tmp_path, cluster, stacks, serial, tiny_model_path):
    model = load_model(tiny_model_path)
    out = tmp_path / "dask"
    with distributed.Client(cluster, set_as_default=False) as client:
        pids = list(client.run(os.getpid).values())
    box: dict = {}

    def run():
        box["summary"] = process_stacks(
            model, stacks, out, outputs=OUTPUTS, dask=cluster.scheduler_address, progress=False
        )

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.time() + 120
    while not list(out.glob("*_metrics.csv")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(pids[0], signal.SIGKILL)  # mid-run: the other files are on the way
    worker.join(timeout=300)
    assert not worker.is_alive()
    summary = box["summary"]
    assert [r.status for r in summary.results] == ["done"] * 6  # rescheduled, none lost
    for p in out.glob(".*.part"):  # what the killed worker was writing: never under a name
        p.unlink()
    _same_outputs(out, serial)
    again = process_stacks(
        model, stacks, out, outputs=OUTPUTS, resume=True, dask=cluster.scheduler_address
    )
    assert [r.status for r in again.results] == ["skipped"] * 6


def test_bad_specs_and_an_unreachable_scheduler_are_named():
    with pytest.raises(MicrovaeError, match="local:N needs N >= 1"):
        connect("local:0")
    with pytest.raises(MicrovaeError, match="give local:N .* or the scheduler's address"):
        connect("myhost:8786")
    t0 = time.time()
    with pytest.raises(MicrovaeError, match=r"tcp://127\.0\.0\.1:9: cannot reach the Dask"):
        connect("tcp://127.0.0.1:9", timeout="2s")
    assert time.time() - t0 < 30


def test_a_huge_stack_is_shared_between_workers_in_blocks(tmp_path, cluster, tiny_model_path):
    """OME-Zarr outputs: a stack of more planes than dask_block is cut into blocks of planes
    on several workers; the outputs are the serial run's."""
    data = tmp_path / "in"
    data.mkdir()
    write_image(data / "big.tif", generate(shape=(9, 48, 64), seed=3).image, axes="ZYX")
    model = load_model(tiny_model_path)
    outputs = ["reconstruction", "embedding", "error", "latents"]
    kw = {"outputs": outputs, "format": "ome-zarr", "progress": False}
    serial = process_stacks(model, data, tmp_path / "serial", **kw)
    with distributed.Client(cluster, set_as_default=False) as client:
        with distributed.get_task_stream(client=client) as stream:
            shared = process_stacks(
                model, data, tmp_path / "dask", dask=cluster.scheduler_address, dask_block=2, **kw
            )
    assert [r.status for r in serial.results + shared.results] == ["done", "done"]
    tasks = [t for t in stream.data if str(t["key"]).startswith("microvae-big.tif")]
    assert len(tasks) == 5 + 1  # blocks of 2 of the 9 planes, then the one that closes
    assert len({t["worker"] for t in tasks}) == 2  # both workers took blocks
    a, b = tmp_path / "serial", tmp_path / "dask"
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for name in ("big_recon.ome.zarr", "big_error.ome.zarr", "big_latents_level0.ome.zarr"):
        np.testing.assert_array_equal(read_image(a / name).data, read_image(b / name).data)
        assert not (b / name / ".microvae-done").exists()  # closed: complete, markers gone
    np.testing.assert_array_equal(
        np.load(a / "big_embedding.npz")["embedding"], np.load(b / "big_embedding.npz")["embedding"]
    )
    assert (a / "big_metrics.csv").read_text() == (b / "big_metrics.csv").read_text()
    assert not list(b.glob(".*.jsonl"))


def test_a_lost_worker_is_said_in_the_summary(tmp_path, cluster, tiny_model_path):
    """The scheduler reruns a lost worker's file without a word to the client; the task's
    start count (a marker in the output folder) makes it said."""
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    # one stack long enough to be killed in the middle of, one short
    write_image(data / "long.tif", generate(shape=(60, 64, 64), seed=1).image, axes="ZYX")
    write_image(data / "short.tif", generate(shape=(2, 48, 48), seed=2).image, axes="ZYX")
    model = load_model(tiny_model_path)
    box: dict = {}

    def run():
        box["summary"] = process_stacks(
            model, data, out, dask=cluster.scheduler_address, progress=False
        )

    thread = threading.Thread(target=run)
    thread.start()
    with distributed.Client(cluster, set_as_default=False) as client:
        deadline, victim = time.time() + 120, None
        while victim is None and time.time() < deadline:
            started = {p.name for p in (out / ".microvae-tasks").glob("microvae-long.tif-*")}
            for addr, keys in client.processing().items():
                if started & {str(k) for k in keys}:  # the long file has started there
                    victim = client.run(os.getpid, workers=[addr])[addr]
            time.sleep(0.05)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    summary = box["summary"]
    assert [r.status for r in summary.results] == ["done", "done"]
    assert [r.reruns for r in summary.results] == [1, 0]
    assert summary.workers_lost == 1
    assert summary.line().endswith("; 1 worker lost, its file rerun")
    assert not (out / ".microvae-tasks").exists()  # the markers go with the run
    assert read_image(out / "long_recon.tif").data.shape == (60, 64, 64)


def test_a_3d_model_shares_a_stack_in_blocks_of_planes(tmp_path, cluster, tiny_3d_model_path):
    """A 3D model on Dask: each block of planes runs the slabs that cover its planes (with
    their neighbours for context), so the outputs are the serial run's."""
    data = tmp_path / "in"
    data.mkdir()
    stack = generate(shape=(20, 32, 32), seed=4, z_step_um=0.2, pixel_size_um=0.05).image
    write_image(data / "vol.tif", stack, axes="ZYX")
    model = load_model(tiny_3d_model_path)
    kw = {"outputs": ["reconstruction"], "format": "ome-zarr", "progress": False}
    serial = process_stacks(model, data, tmp_path / "serial", **kw)
    shared = process_stacks(
        model, data, tmp_path / "dask", dask=cluster.scheduler_address, dask_block=6, **kw
    )
    assert [r.status for r in serial.results + shared.results] == ["done", "done"]
    a = read_image(tmp_path / "serial" / "vol_recon.ome.zarr").data
    b = read_image(tmp_path / "dask" / "vol_recon.ome.zarr").data
    np.testing.assert_array_equal(a, b)
