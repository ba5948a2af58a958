"""CP-SAT in a child process of its own: `solve` here takes and returns what cpsat.solve does.

Why: OR-Tools and TensorFlow each bring their own builds of the same C++ libraries (protobuf,
abseil). In one process they crash it (a segmentation fault seen when a worker trained a Keras
model while another job ran CP-SAT), so a worker never imports ortools: the search runs in
`python -m scheduling.engine.cpsat_process`, which imports nothing else heavy. A plain
subprocess, not multiprocessing: Celery's pool processes are daemons and may not fork children
that way.

The protocol, one JSON object per line: the parent writes the request, then "stop" lines when
`should_stop()` turns true; the child writes {"progress": [fraction, message]} lines and finally
{"result": {...}}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from scheduling.engine.cpsat_result import CpSatResult
from scheduling.engine.instance import Instance, Phrase, from_dict, gettext_noop, phrase, to_dict
from scheduling.engine.schedule import Schedule, ScheduledOp

POLL_SECONDS = 0.1
ROOT = Path(__file__).resolve().parents[2]


def _schedule_to_list(schedule: Schedule | None):
    return None if schedule is None else [[o.job, o.op, o.machine, o.start, o.end] for o in schedule.operations]


def _schedule_from_list(rows) -> Schedule | None:
    return None if rows is None else Schedule([ScheduledOp(*row) for row in rows])


def _to_json(value):
    """A progress message as JSON: a Phrase keeps its template and parameters (at any depth) across the pipe."""
    if isinstance(value, Phrase):
        return {"phrase": [value.template, value.plural, value.n, {k: _to_json(v) for k, v in value.params.items()}]}
    return value


def _from_json(value):
    """The Phrase (or plain value) `_to_json` wrote: the parent reports it in the job's language."""
    if isinstance(value, dict) and "phrase" in value:
        template, plural, n, params = value["phrase"]
        return Phrase(template, plural, n, **{k: _from_json(v) for k, v in params.items()})
    return value


def solve(
    instance: Instance,
    *,
    time_limit: float,
    seed: int = 0,
    workers: int = 1,
    hint: Schedule | None = None,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
):
    """cpsat.solve in a child process; the same CpSatResult (RuntimeError with its stderr if the child fails)."""
    request = {
        "instance": to_dict(instance),
        "time_limit": time_limit,
        "seed": seed,
        "workers": workers,
        "hint": _schedule_to_list(hint),
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))}
    child = subprocess.Popen(
        [sys.executable, "-m", "scheduling.engine.cpsat_process"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
    )  # fmt: skip
    child.stdin.write(json.dumps(request) + "\n")
    child.stdin.flush()
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(child.stdout), daemon=True)
    reader.start()
    seen, stopped_sent = 0, False
    deadline = time.monotonic() + time_limit + 30  # the child holds the limit itself; this catches a hung one
    while reader.is_alive():
        reader.join(POLL_SECONDS)
        for line in lines[seen:]:
            sent = json.loads(line)
            if "progress" in sent and progress:
                fraction, words = sent["progress"]
                progress(fraction, _from_json(words))
        seen = len(lines)
        if not stopped_sent and should_stop and should_stop():
            try:
                child.stdin.write("stop\n")
                child.stdin.flush()
            except (BrokenPipeError, OSError):
                pass
            stopped_sent = True
        if time.monotonic() > deadline:
            child.kill()
            break
    child.wait()
    errors = child.stderr.read()
    final = next((json.loads(line)["result"] for line in reversed(lines) if '"result"' in line), None)
    if final is None:
        message = gettext_noop("CP-SAT's process ended without a result (exit %(code)s): %(errors)s")
        raise RuntimeError(phrase(message, code=child.returncode, errors=errors[-2000:]))
    final["schedule"] = _schedule_from_list(final["schedule"])
    return CpSatResult(**final)


def _child() -> None:
    from scheduling.engine import cpsat

    request = json.loads(sys.stdin.readline())
    stop = threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                stop.set()

    threading.Thread(target=listen, daemon=True).start()
    lock = threading.Lock()

    def progress(fraction: float, message: str) -> None:
        with lock:
            print(json.dumps({"progress": [fraction, _to_json(message)]}), flush=True)

    instance = from_dict(request["instance"])
    result = cpsat.solve(
        instance, time_limit=request["time_limit"], seed=request["seed"], workers=request["workers"],
        hint=_schedule_from_list(request["hint"]), progress=progress, should_stop=stop.is_set,
    )  # fmt: skip
    out = {name: getattr(result, name) for name in result.__dataclass_fields__}
    out["schedule"] = _schedule_to_list(result.schedule)
    with lock:
        print(json.dumps({"result": out}), flush=True)


if __name__ == "__main__":
    _child()
