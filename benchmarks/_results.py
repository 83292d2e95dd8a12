"""What every benchmark script shares: machine information and writing results/NAME.json."""

from __future__ import annotations

import json
import platform
import threading
import time
from pathlib import Path

import psutil
import torch

import microvae
from microvae.io import atomic_path

RESULTS = Path(__file__).resolve().parent / "results"
# which metrics.estimate_camera a result's noise-split figures used: 2 reads the noise from
# second differences binned by an independent mean (2026-12-07); results without the key used
# the 2x2 Haar details before it (report.py flags their split figures)
CAMERA_ESTIMATE = 2


def machine(device: torch.device | None = None) -> dict:
    """The machine a number was measured on."""
    info = {
        "cpu": platform.processor() or platform.machine(),
        "cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "microvae": microvae.__version__,
    }
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_result(name: str, payload: dict, device: torch.device | None = None) -> Path:
    """Write results/NAME.json (NAME_cuda.json etc. off the CPU) atomically; returns the path."""
    if device is not None and device.type != "cpu":
        name = f"{name}_{device.type}"
    result = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(device),
        "camera_estimate": CAMERA_ESTIMATE,
        **payload,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return path


class PeakRSS:
    """Samples this process's resident memory every 5 ms in a thread; keeps the peak."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
