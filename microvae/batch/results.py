"""What a batch run returns: a result per input file, and the run's summary line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BatchSummary", "FileResult"]


@dataclass
class FileResult:
    path: Path
    status: str  # done | skipped | failed
    message: str = ""
    rows: list[dict] = field(default_factory=list)
    reruns: int = 0  # times a Dask worker was lost while it held this file


@dataclass
class BatchSummary:
    """What a batch run did: a result per input file, the metrics table, and what it did
    besides (outputs of earlier runs left out of the inputs, a killed run's temporaries
    removed)."""

    results: list[FileResult]
    metrics_csv: Path | None
    own_outputs: int = 0
    stale_removed: int = 0

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def workers_lost(self) -> int:
        """Dask workers lost while they held a file (each file rerun on another)."""
        return sum(r.reruns for r in self.results)

    def line(self) -> str:
        n = {s: sum(r.status == s for r in self.results) for s in ("done", "skipped", "failed")}
        parts = [
            f"{n['done']} processed, {n['skipped']} already complete (skipped), "
            f"{n['failed']} failed"
        ]
        if self.own_outputs:
            parts.append(f"{self.own_outputs} outputs of earlier runs left out of the inputs")
        if self.stale_removed:
            n = self.stale_removed
            parts.append(f"{n} temporar{'y' if n == 1 else 'ies'} of a stopped run removed")
        lost = self.workers_lost
        if lost:
            files = sum(r.reruns > 0 for r in self.results)
            parts.append(
                f"{lost} worker{'s' * (lost != 1)} lost, "
                + ("its file" if files == 1 else f"their {files} files")
                + " rerun"
            )
        return "; ".join(parts)
