"""Watching a run for trouble: runaway gradient norms and a validation that gets worse.

Both watchers are plain Python (the Lightning module calls them) and keep their state in
checkpoints, so a resumed run goes on judging against the same history.

- :class:`GradientWatch` sees the gradient norm of every step before clipping. An update whose
  norm is ``spike_factor`` times the median of the recent ones is a spike: applying it (even
  clipped) is how a ladder VAE's KL explodes, so it is skipped (VDVAE's skip threshold, made
  relative). At each validation it reports the median norm, the share of clipped updates and
  the spikes, and says so when most updates are being clipped.
- :class:`ValidationWatch` keeps the best validation bits/dim and its step, and says when a
  validation is much worse than the best.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["GradientWatch", "ValidationWatch", "GradientReport"]


@dataclass
class GradientReport:
    """Gradient norms since the last report."""

    first_step: int
    last_step: int
    median: float
    maximum: float
    clipped_share: float
    spikes: int
    clip: float

    @property
    def mostly_clipped(self) -> bool:
        return self.clipped_share > 0.5

    def summary(self) -> str:
        line = (
            f"gradient norm median {self.median:.3g} (max {self.maximum:.3g}) over steps "
            f"{self.first_step}-{self.last_step}, {100 * self.clipped_share:.0f}% of updates "
            f"clipped at train.grad_clip = {self.clip:g}"
        )
        if self.spikes:
            line += f", {self.spikes} spike(s) skipped"
        if self.mostly_clipped:
            line += (
                "; most updates are clipped, so the gradient runs above the clip: if validation "
                "gets worse, lower train.lr (or raise train.grad_clip if it stays stable)"
            )
        return line


@dataclass
class GradientWatch:
    """Per-step gradient norms (before clipping): spikes to skip, and periodic reports."""

    clip: float
    spike_factor: float = 50.0  # 0: never skip
    window: int = 50
    warmup: int = 100  # steps seen before spikes are judged
    max_spikes: int = 3  # per window
    recent: deque = field(default_factory=lambda: deque(maxlen=50))
    spikes_total: int = 0
    _since: list = field(default_factory=list)
    _spikes_since: int = 0
    _flags: deque = field(default_factory=lambda: deque(maxlen=50))

    def __post_init__(self):
        self.recent = deque(self.recent, maxlen=self.window)
        self._flags = deque(self._flags, maxlen=self.window)

    def is_spike(self, norm: float) -> bool:
        """Whether the update with this (finite) norm should be skipped; records the norm.

        Every norm enters the window, spikes too, and at most ``max_spikes`` updates are
        skipped per ``window`` steps: a norm that stays high is a new regime of training
        (gradients grow as the likelihood sharpens), not a spike, and the median follows it.
        """
        spike = (
            self.spike_factor > 0
            and len(self.recent) >= self.warmup
            and sum(self._flags) < self.max_spikes
            and norm > self.spike_factor * float(np.median(self.recent))
        )
        self.recent.append(norm)
        self._flags.append(spike)
        if spike:
            self.spikes_total += 1
            self._spikes_since += 1
        return spike

    def record(self, step: int, norm: float) -> None:
        """Note a step's norm for the next report."""
        self._since.append((step, norm))

    def report(self) -> GradientReport | None:
        """What happened since the last report (None if no step since)."""
        if not self._since:
            return None
        norms = np.array([n for _, n in self._since])
        rep = GradientReport(
            first_step=self._since[0][0],
            last_step=self._since[-1][0],
            median=float(np.median(norms)),
            maximum=float(norms.max()),
            clipped_share=float((norms > self.clip).mean()),
            spikes=self._spikes_since,
            clip=self.clip,
        )
        self._since, self._spikes_since = [], 0
        return rep

    def state(self) -> dict:
        return {"recent": list(self.recent), "spikes_total": self.spikes_total}

    def load(self, state: dict) -> None:
        self.recent = deque(state.get("recent", []), maxlen=self.window)
        self.spikes_total = int(state.get("spikes_total", 0))


@dataclass
class ValidationWatch:
    """The best validation bits/dim of a run and a warning when one is much worse."""

    tolerance: float = 0.1  # bits/dim above the best that count as "much worse"
    best: float | None = None
    best_step: int | None = None
    history: list = field(default_factory=list)

    def update(self, step: int, bits_per_dim: float) -> tuple[bool, str | None]:
        """(is this the best so far, a warning if it is much worse than the best)."""
        self.history.append((step, bits_per_dim))
        if self.best is None or bits_per_dim < self.best:
            self.best, self.best_step = bits_per_dim, step
            return True, None
        gap = bits_per_dim - self.best
        if gap > self.tolerance:
            return False, (
                f"validation bits/dim {bits_per_dim:.4f} at step {step} is {gap:.3f} above the "
                f"best, {self.best:.4f} at step {self.best_step}: the run is getting worse "
                "(model.pt will hold the best weights); lower train.lr, or check the gradient "
                "norm report"
            )
        return False, None

    def state(self) -> dict:
        return {"best": self.best, "best_step": self.best_step, "history": self.history}

    def load(self, state: dict) -> None:
        self.best = state.get("best")
        self.best_step = state.get("best_step")
        self.history = [tuple(h) for h in state.get("history", [])]
