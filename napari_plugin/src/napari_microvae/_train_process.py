"""The Train widget's training process: ``python -m napari_microvae._train_process``.

It reads one JSON line on stdin (the arguments of :func:`microvae.train`), trains, and writes
length-prefixed pickles to its stdout: each :class:`~microvae.training.events.TrainingEvent`,
then ``("done", model file)`` or ``("error", message)``. A line ``stop`` on stdin, or stdin
closing (the viewer went away), asks the run to stop after its current step; it then saves
its checkpoints and ``model.pt`` as a run that reached its end does.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
import threading
import traceback

HEADER = struct.Struct("!I")


def write_frame(stream, item) -> None:
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream):
    """The next item, or None at the end of the stream."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    size = HEADER.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _watch_stdin(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()  # asked to, or stdin closed


def main() -> int:
    if hasattr(os, "nice"):
        # below the viewer's priority: on a machine whose cores training fills, the GUI
        # thread still gets a core at once when it has work (benchmarks/gui_stall.py)
        os.nice(5)
    # the frames go to the real stdout; anything printed goes to stderr instead
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    spec = json.loads(sys.stdin.readline())
    stop = threading.Event()
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    lock = threading.Lock()
    gone = []  # the viewer's end of the pipe closed

    def send(item) -> None:
        if gone:
            return
        with lock:
            try:
                write_frame(frames, item)
            except (BrokenPipeError, OSError) as exc:
                # nobody is listening any more: stop, and let the run save its checkpoints
                # and model.pt instead of failing in the middle of a step
                gone.append(exc)
                stop.set()
                print(f"microvae: the viewer went away ({exc}); stopping", file=sys.stderr)

    import microvae  # after the pipes are set up: its import may print

    try:
        _, run = microvae.train(
            spec["config"],
            spec["data"],
            spec["run_dir"],
            overrides=spec["overrides"],
            resume=spec["resume"],
            overwrite=spec["overwrite"],
            progress=False,
            on_event=send,
            stop=stop,
        )
        send(("done", str(run / "model.pt")))
    except (microvae.MicrovaeError, KeyboardInterrupt) as exc:  # the user's to fix; or a kill
        send(("error", str(exc)))
    except Exception as exc:  # a bug: said in full
        trace = traceback.format_exc(limit=-6)
        send(("error", f"training failed: {type(exc).__name__}: {exc}\n{trace}"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
