"""Training seen from outside (microvae.train's on_event and stop): the events a run sends,
and a stop that ends it early with everything saved and resumable."""

from __future__ import annotations

import threading

import numpy as np
import torch

import microvae
from microvae.config import read_model_file


def test_events_follow_the_run(tmp_path, synth_data, tiny_overrides):
    events = []
    overrides = tiny_overrides + ["train.max_steps=40", "train.val_every=20"]
    model, run = microvae.train(
        None,
        str(synth_data / "synth_00?.tif"),
        tmp_path / "run",
        overrides=overrides,
        progress=False,
        on_event=events.append,
        event_every=5,
    )
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and events[0].max_steps == 40
    steps = [e.step for e in events if e.kind == "step"]
    assert steps == [5, 10, 15, 20, 25, 30, 35, 40]
    first = next(e for e in events if e.kind == "step")
    assert {"loss", "bits_per_dim", "kl", "kl_level_0", "kl_level_1"} <= set(first.values)
    assert all(np.isfinite(v) for v in first.values.values())
    vals = [e for e in events if e.kind == "validation"]
    assert [e.step for e in vals] == [20, 40]
    for e in vals:
        assert e.verdict in ("healthy", "partly collapsed", "collapsed")
        assert e.text.startswith(e.verdict) and "latent channels carry KL" in e.text
        orig, rec = e.preview
        assert orig.shape == rec.shape == (32, 32) and orig.dtype == np.float32
    # the preview tile is fixed: the same original at every validation
    np.testing.assert_array_equal(vals[0].preview[0], vals[1].preview[0])
    # and it is a validation tile in the data's units (12-bit synthetic counts), not [-1, 1]
    assert vals[0].preview[0].max() > 50
    # the events' validation numbers are the ones model.pt records for its best weights
    saved = read_model_file(run / "model.pt")["summary"]
    best = min(vals, key=lambda e: e.values["val/bits_per_dim"])
    assert saved["validation"]["val/bits_per_dim"] == best.values["val/bits_per_dim"]
    assert saved["stopped_at"] is None
    assert "stopped" not in kinds


def test_stop_ends_early_saved_and_resumable(tmp_path, synth_data, tiny_overrides):
    stop = threading.Event()
    seen = []

    def on_event(e):
        seen.append(e)
        if e.kind == "step" and e.step >= 12:
            stop.set()  # as a Stop button would, from another thread

    overrides = tiny_overrides + ["train.max_steps=60", "train.val_every=30"]
    data = str(synth_data / "synth_00?.tif")
    out = tmp_path / "run"
    _, run = microvae.train(
        None,
        data,
        out,
        overrides=overrides,
        progress=False,
        on_event=on_event,
        stop=stop,
        event_every=4,
    )
    summary = read_model_file(run / "model.pt")["summary"]
    assert summary["steps"] == 12 and summary["stopped_at"] == 12
    # the steps before the stop were validated, so model.pt holds validated weights
    assert summary["saved"]["weights"] == "best" and summary["saved"]["step"] == 12
    assert [e.kind for e in seen if e.kind in ("stopped", "validation")] == [
        "stopped",
        "validation",
    ]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 12
    # Resume continues from step 12 to train.max_steps
    events = []
    microvae.train(
        None, data, out, overrides=[], resume=True, progress=False, on_event=events.append
    )
    assert events[0].kind == "start" and events[0].values["first_step"] == 12
    summary = read_model_file(run / "model.pt")["summary"]
    assert summary["steps"] == 60 and summary["stopped_at"] is None


def test_warnings_reach_the_receiver(tmp_path, synth_data, tiny_overrides):
    """A run's warnings (here: the last weights differ from the saved best, or the latent
    verdict) come as message events; a stop set before the first step trains one step."""
    stop = threading.Event()
    stop.set()
    events = []
    microvae.train(
        None,
        str(synth_data / "synth_00?.tif"),
        tmp_path / "run",
        overrides=tiny_overrides,
        progress=False,
        on_event=events.append,
        stop=stop,
    )
    assert [e.step for e in events if e.kind == "stopped"] == [1]
    texts = [e.text for e in events if e.kind == "message"]
    assert any("validation bits/dim" in t for t in texts)
