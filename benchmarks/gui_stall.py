"""Benchmark: how long the napari viewer stops answering while the Train widget trains.

A shown viewer (a real X server: run under ``xvfb-run -a``) holds an image layer; the Train
widget trains ``configs/demo.yaml`` on it from the layer, as a user would. A Qt timer asks to
fire every ``--tick-ms`` on the GUI thread; the gap between two firings, less the interval, is
how long the event loop was busy elsewhere (a stall: no repaint, no answer to the mouse). The
gaps are recorded before training (the idle viewer, the baseline) and while training (the
subprocess's start, the plots and the preview layer at each validation), and written to
``benchmarks/results/gui_stall.json``: the longest stall, the 99th percentile, and the number
of stalls over 100 ms (the threshold at which people notice a lag).

    xvfb-run -a .venv/bin/python benchmarks/gui_stall.py [--steps 200] [--image FILE]

The image is the HeLa mitochondria of ``../shared/data/real`` where present, else synthetic
mitochondria (512 x 512).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _results import write_result

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "hela-cells_mito_ch1.tif"
NOTICEABLE_MS = 100.0


def _stalls(times: list[float], tick_ms: float, t0: float | None = None) -> dict:
    """Stall statistics (ms) from the firing times (s) of a timer of ``tick_ms``; with ``t0``
    also the ten longest, each with when it began (s after ``t0``)."""
    gaps = np.diff(np.asarray(times)) * 1e3 - tick_ms
    gaps = np.maximum(gaps, 0.0)
    if not len(gaps):
        return {"ticks": len(times), "longest_ms": None}
    top = np.argsort(-gaps)[:10]
    longest = [[round(times[i] - t0, 2), round(float(gaps[i]), 1)] for i in top] if t0 else None
    return {
        "ticks": len(times),
        "seconds": round(times[-1] - times[0], 2),
        "longest_ms": round(float(gaps.max()), 1),
        "p99_ms": round(float(np.percentile(gaps, 99)), 1),
        "median_ms": round(float(np.median(gaps)), 2),
        "over_100ms": int((gaps > NOTICEABLE_MS).sum()),
        **({"ten_longest_at_s_ms": longest} if longest else {}),
    }


def _timed(calls: list, what: str, func, t0: list[float]):
    """``func`` wrapped to record (what, start s after t0[0], ms) of each call."""

    def wrapped(*a, **k):
        start = time.perf_counter()
        try:
            return func(*a, **k)
        finally:
            end = time.perf_counter()
            calls.append([what, round(start - t0[0], 2), round((end - start) * 1e3, 1)])

    return wrapped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--val-every", type=int, default=50)
    ap.add_argument("--tick-ms", type=float, default=10.0)
    ap.add_argument("--idle-s", type=float, default=5.0)
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--name", default="gui_stall")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        print("no X display: run under xvfb-run -a (napari renders only on X)", file=sys.stderr)
        return 2
    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")

    import napari
    from napari.settings import get_settings
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    import microvae
    from napari_microvae._train_widget import TrainWidget

    get_settings().application.gui_notification_level = "none"
    image_path = args.image or (REAL if REAL.is_file() else None)
    if image_path is not None:
        image, source = microvae.read_image(image_path).data, image_path.name
    else:
        image, source = microvae.synthetic.simulate(shape=(512, 512), seed=0).image, "synthetic"
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    layer = viewer.add_image(image, name="image")
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microvae")
    app = QApplication.instance()

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(int(args.tick_ms))
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def run_until(done, timeout_s: float) -> None:
        end = time.perf_counter() + timeout_s
        while not done() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)  # the event loop's own wait, as app.exec() would

    run_until(lambda: False, 2.0)  # the window shown and settled
    timer.start()
    run_until(lambda: False, args.idle_s)
    idle = _stalls(ticks, args.tick_ms)
    ticks.clear()

    # what the GUI thread does for the widget, timed: where the stalls come from
    calls: list = []
    t_start = [time.perf_counter()]
    widget.plots.draw = _timed(calls, "plots.draw", widget.plots.draw, t_start)
    widget.plots.canvas.draw = _timed(calls, "canvas.draw", widget.plots.canvas.draw, t_start)
    widget._show_preview = _timed(calls, "preview layer", widget._show_preview, t_start)
    widget._start = _timed(calls, "start (layers to TIFF, job)", widget._start, t_start)
    work = Path(tempfile.mkdtemp())
    widget.layers.value = [layer]
    widget.config.value = "demo"
    widget.steps.value = args.steps
    widget.val_every.value = args.val_every
    widget.device.value = "cpu"
    widget.out.value = work / "out"
    t0 = t_start[0] = time.perf_counter()
    worker = widget.train()
    if worker is None:
        print(f"the widget refused to train: {widget.status.value}", file=sys.stderr)
        return 1
    run_until(lambda: widget.busy == 0, 3600)
    seconds = time.perf_counter() - t0
    timer.stop()
    training = _stalls(ticks, args.tick_ms, t0)
    h = widget.history
    payload = {
        "image": source,
        "image_shape": list(image.shape),
        "config": "configs/demo.yaml",
        "steps": args.steps,
        "steps_done": h.step,
        "validations": len(h.val_steps),
        "training_seconds": round(seconds, 1),
        "tick_ms": args.tick_ms,
        "noticeable_ms": NOTICEABLE_MS,
        "idle": idle,
        "training": training,
        "status": widget.status.value,
        "gui_calls_over_20ms": [c for c in calls if c[2] > 20],
    }
    path = write_result(args.name, payload)
    print(f"written: {path}")
    print(f"idle: {idle}\ntraining: {training}")
    viewer.close()
    return 0 if h.step == args.steps else 1


if __name__ == "__main__":
    sys.exit(main())
