"""Schedule a job-shop problem file from the command line; the engine only, no database.

    python manage.py solve_jssp ft06.txt --method cpsat --time-limit 10 --seed 0 --out schedule.json

Reads the file with scheduling.engine.formats (the format detected unless --format is given),
runs the method through scheduling.engine.solve, checks the schedule with schedule.validate,
writes `{"makespan": …, "operations": [{"job", "op", "machine", "start", "end"}, …]}`
(Schedule.as_json: jobs and operations numbered from 0, machines as the engine numbers them,
which for OR-Library files is the file's) and prints the makespan on its own line.

Exit status: 0 written; 2 bad input (the file, an unknown method or format, a time limit that
is not a positive number of seconds, a bad seed, an --out folder that does not exist), with
the message on stderr; 1 no schedule (the method found none, cannot run here, or broke a rule).
The output file is replaced only once the schedule is valid, so a failed run changes nothing.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from scheduling.engine import formats
from scheduling.engine import solve as solving
from scheduling.engine.instance import InstanceError
from scheduling.engine.schedule import ScheduleError, validate

BAD_INPUT, NO_SCHEDULE = 2, 1
MAX_SEED = 2**31 - 1  # CP-SAT's random_seed is a 32-bit integer


def _bad(message: str) -> CommandError:
    return CommandError(message, returncode=BAD_INPUT)


class Command(BaseCommand):
    help = "Schedule a job-shop problem file (OR-Library, Taillard or CSV) and write the schedule as JSON."
    # The engine needs no database; the system checks would only slow a batch of runs down.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("instance", help="the problem file")
        parser.add_argument("--method", required=True, help=f"one of {', '.join(solving.METHODS)}")
        parser.add_argument("--time-limit", dest="time_limit", default="10", help="seconds, more than 0 (default 10)")
        parser.add_argument("--seed", default="0", help=f"a whole number from 0 to {MAX_SEED} (default 0)")
        parser.add_argument("--out", help="where to write the schedule as JSON (replaced when the run succeeds)")
        parser.add_argument("--format", help="orlib, taillard or csv (default: detected from the file)")

    def handle(self, *args, **options):
        method = options["method"]
        if method not in solving.METHODS:
            raise _bad(f"Unknown method {method!r}: use one of {', '.join(solving.METHODS)}.")
        file_format = options["format"] or None
        if file_format is not None and file_format not in formats.FORMATS:
            raise _bad(f"Unknown format {file_format!r}: use one of {', '.join(formats.FORMATS)}.")
        time_limit = _time_limit(str(options["time_limit"]))
        seed = _seed(str(options["seed"]))
        out = Path(options["out"]) if options["out"] else None
        if out is not None and not out.parent.is_dir():
            raise _bad(f"Cannot write {out}: the folder {out.parent} does not exist.")

        path = Path(options["instance"])
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as e:
            raise _bad(f"Cannot read {path}: {e.strerror or e}.") from None
        except UnicodeDecodeError as e:
            line = e.object[: e.start].count(b"\n") + 1
            raise _bad(
                f"{path}: line {line}: the file is not UTF-8 text (byte {e.start + 1} cannot be read); save it as UTF-8."
            ) from None
        try:
            instance = formats.read(text, format=file_format, name=path.stem)
        except InstanceError as e:
            raise _bad(f"{path}: {e}") from None

        try:
            result = solving.solve(instance, method, time_limit=time_limit, seed=seed)
            schedule = validate(instance, result.schedule)
        except (solving.MethodError, solving.NoScheduleFound) as e:
            raise CommandError(str(e), returncode=NO_SCHEDULE) from None
        except ScheduleError as e:
            raise CommandError(f"The {method} schedule breaks a rule of the problem: {e}", returncode=NO_SCHEDULE) from None

        if out is not None:
            _write_atomically(out, json.dumps(schedule.as_json()) + "\n")
        if options["verbosity"] >= 2:
            details = [f"{k} {v}" for k, v in result.extra.items() if isinstance(v, str | int | float | bool | None)]
            summary = f"{instance.name}: {instance.n_jobs} jobs, {instance.n_machines} machines; {method}"
            self.stderr.write(summary + (": " + ", ".join(details) if details else ""))
        self.stdout.write(str(schedule.makespan))


def _time_limit(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _bad(f"--time-limit must be a number of seconds above 0, not {text!r}.")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise _bad(f"--seed must be a whole number from 0 to {MAX_SEED}, not {text!r}.")
    return value


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` beside `path` and rename it into place: no half-written file on a failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the schedule from the others who run the shop
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
