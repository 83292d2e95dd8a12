"""Watching training: gradient spikes and reports, validation worse than its best, the
learning-rate schedule."""

from __future__ import annotations

import math

import pytest

from microvae.config import TrainConfig
from microvae.training.lr_schedule import lr_factor
from microvae.training.watch import GradientWatch, ValidationWatch


def test_a_gradient_spike_is_skipped_and_reported():
    w = GradientWatch(clip=50.0, spike_factor=50.0, warmup=20)
    for step in range(30):
        assert not w.is_spike(10.0 + step % 3)
        w.record(step, 10.0)
    assert w.is_spike(1e6)  # 1e5 times the median
    assert not w.is_spike(15.0)
    rep = w.report()
    assert rep.spikes == 1 and rep.median == 10.0 and rep.clipped_share == 0.0
    assert not rep.mostly_clipped and "1 spike(s) skipped" in rep.summary()
    assert w.report() is None  # nothing since the last report


def test_growing_gradients_are_a_regime_not_spikes():
    # the norm grows 100-fold in a few steps as the likelihood sharpens: at most a few
    # updates are skipped, then the median follows and training goes on
    w = GradientWatch(clip=1e9, spike_factor=20.0, warmup=10, window=50)
    skipped = [w.is_spike(1.0 if s < 20 else 500.0) for s in range(200)]
    assert sum(skipped) <= w.max_spikes
    assert not any(skipped[-100:])


def test_mostly_clipped_updates_are_said():
    w = GradientWatch(clip=50.0)
    for step in range(10):
        w.record(step, 300.0)
    rep = w.report()
    assert rep.mostly_clipped and rep.clipped_share == 1.0
    assert "lower train.lr" in rep.summary() and "steps 0-9" in rep.summary()


def test_watch_state_survives_a_checkpoint():
    w = GradientWatch(clip=50.0)
    for n in (1.0, 2.0, 3.0):
        w.is_spike(n)
    v = ValidationWatch()
    v.update(100, 8.0)
    w2, v2 = GradientWatch(clip=50.0), ValidationWatch()
    w2.load(w.state())
    v2.load(v.state())
    assert list(w2.recent) == [1.0, 2.0, 3.0]
    assert (v2.best, v2.best_step, v2.history) == (8.0, 100, [(100, 8.0)])


def test_validation_much_worse_than_the_best_is_said():
    v = ValidationWatch(tolerance=0.1)
    assert v.update(200, 8.5) == (True, None)
    assert v.update(400, 8.2) == (True, None)
    assert v.update(600, 8.25) == (False, None)  # within the tolerance
    best, warning = v.update(800, 12.3)
    assert not best and "4.100 above the best, 8.2000 at step 400" in warning
    assert (v.best, v.best_step) == (8.2, 400)


def test_lr_schedule_warms_up_holds_then_decays_to_its_floor():
    cfg = TrainConfig(
        max_steps=1000,
        lr_warmup_steps=10,
        lr_schedule="cosine",
        lr_decay_share=0.3,
        lr_final=0.05,
    )
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == 1.0
    assert lr_factor(500, cfg) == 1.0 and lr_factor(700, cfg) == 1.0
    assert lr_factor(850, cfg) == pytest.approx(0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(1000, cfg) == pytest.approx(0.05) and lr_factor(5000, cfg) == 0.05
    values = [lr_factor(s, cfg) for s in range(700, 1001)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone decay
    constant = TrainConfig(max_steps=1000, lr_schedule="constant")
    assert {lr_factor(s, constant) for s in (0, 500, 999)} == {1.0}
