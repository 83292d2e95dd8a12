"""Choosing a torch device: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; other names are used as given."""
    if isinstance(name, torch.device):
        return name
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
