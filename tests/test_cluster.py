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
