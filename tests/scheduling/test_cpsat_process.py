"""CP-SAT in its own process: the same answers, progress and stop, and no OR-Tools in the caller's process."""

import subprocess
import sys
import time

from scheduling.engine import cpsat_process
from scheduling.engine.schedule import validate
from tests.scheduling.test_engine import public


def test_the_child_process_solves_ft06_to_its_optimum_and_reports_progress():
    seen = []
    result = cpsat_process.solve(public("ft06"), time_limit=20, seed=0, progress=lambda f, m: seen.append((f, m)))
    assert (result.makespan, result.optimal, result.lower_bound, result.status) == (55, True, 55, "OPTIMAL")
    validate(public("ft06"), result.schedule)
    assert seen and seen[-1][0] == 1.0


def test_a_stop_reaches_the_child_and_the_best_schedule_comes_back():
    instance = public("ta01")
    started = time.monotonic()
    result = cpsat_process.solve(instance, time_limit=60, seed=0, should_stop=lambda: time.monotonic() - started > 2)
    assert time.monotonic() - started < 10 and result.stopped
    assert result.schedule is not None and validate(instance, result.schedule)


def test_solving_with_cpsat_does_not_load_ortools_in_this_process():
    code = (
        "import sys; from scheduling.engine.solve import solve; from scheduling.engine.instance import job_shop;"
        "r = solve(job_shop([[(0, 3), (1, 2)], [(1, 2), (0, 4)]]), 'cpsat', time_limit=5, seed=0);"
        "assert r.schedule.makespan == 7 and r.extra['optimal'], r; assert 'ortools' not in sys.modules; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
