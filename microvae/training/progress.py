"""The training progress bar, labelled by what a run counts: steps, not epochs."""

from __future__ import annotations

from importlib.util import find_spec

from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar

__all__ = ["progress_bar"]


class _StepsRichBar(RichProgressBar):
    # A run is max_steps steps in one loop of unbounded epochs, for which Lightning's label
    # reads "Epoch 0/-2" (max_epochs - 1 with max_epochs = -1): it looked like an error.
    # (A private hook: if Lightning renames it, the bar falls back to its own label.)
    def _get_train_description(self, current_epoch: int) -> str:
        return "training"


def progress_bar() -> ProgressBar:
    """Rich's bar labelled "training" when rich is installed (Lightning's own choice), else
    tqdm's (whose label, "Epoch 0", carries no total)."""
    return _StepsRichBar() if find_spec("rich") is not None else TQDMProgressBar()
