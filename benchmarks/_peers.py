"""What the benchmarks that run careamics' peers share: its environment, running one of its
scripts there, and looking its reconstructions up by input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

PEER_DIR = Path(__file__).resolve().parent / "careamics"
PEER_PYTHON = PEER_DIR / ".venv" / "bin" / "python"


def run_peer_script(script: str, *args: str) -> None:
    """Run careamics/SCRIPT in careamics' own environment (careamics/setup.sh); raise with
    the end of its stderr if it fails."""
    cmd = [str(PEER_PYTHON), str(PEER_DIR / script), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")


class Predicted:
    """A peer's reconstructions, made in its own environment, looked up by input: what the
    scoring code calls as a model (``reconstruct(image[, axes])``)."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]]):
        self.pairs = pairs

    def reconstruct(self, image: np.ndarray, axes: str | None = None) -> np.ndarray:
        for x, r in self.pairs:
            if x.shape == image.shape and np.array_equal(x, image):
                if image.dtype.kind in "ui":  # rounded and clipped, as microvae's to_raw does
                    info = np.iinfo(image.dtype)
                    return np.clip(np.rint(r), info.min, info.max).astype(image.dtype)
                return r
        raise KeyError("image not reconstructed by the peer")
