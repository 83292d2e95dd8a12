"""Atomic file writing: a temporary name in the target folder, then a rename.

An interrupted run (Ctrl-C, a kill, a full disk) therefore never leaves a half-written file
under the final name; at worst a hidden temporary ``.NAME.PID@HOST.XXXXXXXX.part``. Its name
says whose it is, so that a later run can tell a killed writer's leftovers
(:func:`stale_temporaries`) from a live writer's and remove them.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "stale_temporaries", "temp_path"]

# a temporary whose writer cannot be asked (another machine, or a name without its writer)
# is stale once untouched for this long: a live writer touches it at least every plane
STALE_AGE_S = 3600.0


def _host() -> str:
    """This machine's name as it goes into a temporary's name (no dots, no separators)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def temp_path(path: str | os.PathLike) -> Path:
    """A new empty temporary file beside ``path``, ``.NAME.PID@HOST.XXXXXXXX.part``: hidden,
    and named for its writer (see :func:`stale_temporaries`)."""
    path = Path(path)
    prefix = f".{path.name}.{os.getpid()}@{_host()}."
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def stale_temporaries(
    folder: str | os.PathLike,
    names: Iterable[str],
    *,
    max_age_s: float = STALE_AGE_S,
    now: float | None = None,
) -> list[Path]:
    """The temporaries in ``folder`` of the files called ``names`` (from :func:`temp_path`
    or :func:`atomic_path`) that no live writer holds: a writer on this machine whose
    process is gone, or, where the writer cannot be asked (another machine, or an older name
    without a writer), one untouched for ``max_age_s`` seconds. Never a live writer's on this
    machine. The folder is listed once, whatever the number of names."""
    folder, names = Path(folder), set(names)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    owner = re.compile(r"(\d+)@([A-Za-z0-9-]+)\.[^.]+\.part$")
    host, stale = _host(), []
    for tmp in folder.iterdir():
        name = tmp.name
        if not (name.startswith(".") and name.endswith(".part")):
            continue
        # .NAME.REST: NAME holds dots too, so try each split against the names asked for
        rest = next(
            (name[i + 1 :] for i, c in enumerate(name) if c == "." and name[1:i] in names),
            None,
        )
        if rest is None or not tmp.is_file():
            continue
        m = owner.fullmatch(rest)
        if m is None and not re.fullmatch(r"[^.]+\.part", rest):
            continue  # another file's (NAME.x's temporaries share the head)
        if m is not None and m.group(2) == host:
            if not _alive(int(m.group(1))) and int(m.group(1)) != os.getpid():
                stale.append(tmp)
            continue
        try:
            age = now - tmp.stat().st_mtime
        except FileNotFoundError:  # its writer finished meanwhile
            continue
        if age > max_age_s:
            stale.append(tmp)
    return sorted(stale)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The caller writes the whole file to the yielded path. If the block raises, the temporary
    file is removed and ``path`` is left as it was (absent, or its previous content).

    Example:
        >>> with atomic_path("out/recon.tif") as tmp:   # doctest: +SKIP
        ...     tifffile.imwrite(tmp, array)
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        # fsync before the rename, so that a crash cannot leave a renamed but empty file.
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
