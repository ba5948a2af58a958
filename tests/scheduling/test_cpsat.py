"""The CP-SAT reference solver: optimality where provable, limits held, reproducible runs.

Standard instances are written out below (machine, duration pairs per job, machines from 0)
so the tests need nothing but the engine and OR-Tools; their optima are the published ones.
The hand-made instances' optima are checked here by enumerating every semi-active schedule.
"""

import itertools
import time

import pytest

from scheduling.engine import cpsat
from scheduling.engine.instance import Instance, Job, Machine, Operation, job_shop
from scheduling.engine.schedule import Schedule, ScheduledOp, figures, validate

FT06 = """
2 1 0 3 1 6 3 7 5 3 4 6
1 8 2 5 4 10 5 10 0 10 3 4
2 5 3 4 5 8 0 9 1 1 4 7
1 5 0 5 2 5 3 3 4 8 5 9
2 9 1 3 4 5 5 4 0 3 3 1
1 3 3 3 5 9 0 10 4 4 2 1
"""
LA01 = """
1 21 0 53 4 95 3 55 2 34
0 21 3 52 4 16 2 26 1 71
3 39 4 98 1 42 2 31 0 12
1 77 0 55 4 79 2 66 3 77
0 83 3 34 2 64 1 19 4 37
1 54 2 43 4 79 0 92 3 62
3 69 4 77 1 87 2 87 0 93
2 38 0 60 1 41 3 24 4 83
3 17 1 49 4 25 0 44 2 98
4 77 3 79 2 43 1 75 0 96
"""
LA16 = """
1 21 6 71 9 16 8 52 7 26 2 34 0 53 4 21 3 55 5 95
4 55 2 31 5 98 9 79 0 12 7 66 1 42 8 77 6 77 3 39
3 34 2 64 8 62 1 19 4 92 9 79 7 43 6 54 0 83 5 37
1 87 3 69 2 87 7 38 8 24 9 83 6 41 0 93 5 77 4 60
2 98 0 44 5 25 6 75 7 43 1 49 4 96 9 77 3 17 8 79
2 35 3 76 5 28 9 10 4 61 6 9 0 95 8 35 1 7 7 95
3 16 2 59 0 46 1 91 9 43 8 50 6 52 5 59 4 28 7 27
1 45 0 87 3 41 4 20 6 54 9 43 8 14 5 9 2 39 7 71
4 33 2 37 8 66 5 33 3 26 7 8 1 28 6 89 9 42 0 78
8 69 9 81 2 94 4 96 3 27 0 69 7 45 6 78 1 74 5 84
"""
TA01 = """
6 94 12 66 4 10 7 53 3 26 2 15 10 65 11 82 8 10 14 27 9 93 13 92 5 96 0 70 1 83
4 74 5 31 7 88 14 51 13 57 8 78 11 8 9 7 6 91 10 79 0 18 3 51 12 18 1 99 2 33
1 4 8 82 9 40 12 86 6 50 11 54 13 21 5 6 0 54 2 68 7 82 10 20 4 39 3 35 14 68
5 73 2 23 9 30 6 30 10 53 0 94 13 58 4 93 7 32 14 91 11 30 8 56 12 27 1 92 3 9
7 78 8 23 6 21 10 60 4 36 9 29 2 95 14 99 12 79 5 76 1 93 13 42 11 52 0 42 3 96
5 29 3 61 12 88 13 70 11 16 4 31 14 65 7 83 2 78 1 26 10 50 0 87 9 62 6 14 8 30
12 18 3 75 7 20 8 4 14 91 6 68 1 19 11 54 4 85 5 73 2 43 10 24 0 37 13 87 9 66
11 32 5 52 0 9 7 49 12 61 13 35 14 99 1 62 2 6 8 62 4 7 3 80 9 3 6 57 10 7
10 85 11 30 6 96 14 91 0 13 1 87 2 82 5 83 12 78 4 56 8 85 7 8 9 66 13 88 3 15
6 5 11 59 9 30 2 60 8 41 0 17 13 66 3 89 10 78 7 88 1 69 12 45 14 82 4 6 5 13
4 90 7 27 13 1 0 8 5 91 12 80 6 89 8 49 14 32 10 28 3 90 1 93 11 6 9 35 2 73
2 47 14 43 0 75 12 8 6 51 10 3 7 84 5 34 8 28 9 60 13 69 1 45 3 67 11 58 4 87
5 65 8 62 10 97 2 20 3 31 6 33 9 33 0 77 13 50 4 80 1 48 11 90 12 75 7 96 14 44
8 28 14 21 4 51 13 75 5 17 6 89 9 59 1 56 12 63 7 18 11 17 10 30 3 16 2 7 0 35
10 57 8 16 12 42 6 34 4 37 1 26 13 68 14 73 11 5 0 8 7 12 3 87 2 83 9 20 5 97
"""


def standard(text: str, name: str) -> Instance:
    rows = []
    for line in text.strip().splitlines():
        numbers = [int(x) for x in line.split()]
        rows.append(list(zip(numbers[::2], numbers[1::2], strict=True)))
    return job_shop(rows, name=name)


def hand_made(rows, *, machines: int, releases=None, dues=None, weights=None) -> Instance:
    jobs = tuple(
        Job(
            name=f"J{j}",
            operations=tuple(Operation(tuple(options)) for options in row),
            release=releases[j] if releases else 0,
            due=dues[j] if dues else None,
            weight=weights[j] if weights else 1.0,
        )
        for j, row in enumerate(rows)
    )
    return Instance(jobs=jobs, machines=tuple(Machine(f"M{m}") for m in range(machines)))


def dispatch(instance: Instance) -> Schedule:
    """A dispatching rule's schedule: earliest start first, then most work remaining."""
    next_op = [0] * instance.n_jobs
    job_free = [job.release for job in instance.jobs]
    machine_free = [0] * instance.n_machines
    remaining = [sum(op.duration for op in job.operations) for job in instance.jobs]
    done = []
    while True:
        candidates = []
        for j, job in enumerate(instance.jobs):
            if next_op[j] < len(job.operations):
                machine, duration = job.operations[next_op[j]].options[0]
                candidates.append((max(job_free[j], machine_free[machine]), -remaining[j], j, machine, duration))
        if not candidates:
            return Schedule(operations=done)
        start, _, j, machine, duration = min(candidates)
        done.append(ScheduledOp(job=j, op=next_op[j], machine=machine, start=start, end=start + duration))
        next_op[j] += 1
        job_free[j] = machine_free[machine] = start + duration
        remaining[j] -= duration


def best_by_enumeration(instance: Instance, cost) -> float:
    """The least `cost` over every machine choice and every order of the operations (small instances only)."""
    keys = [(j, k) for j, job in enumerate(instance.jobs) for k in range(len(job.operations))]

    def orders(next_op):
        if all(next_op[j] == len(job.operations) for j, job in enumerate(instance.jobs)):
            yield []
        for j, job in enumerate(instance.jobs):
            if next_op[j] < len(job.operations):
                after = list(next_op)
                after[j] += 1
                for rest in orders(after):
                    yield [(j, next_op[j]), *rest]

    best = None
    for choice in itertools.product(*(instance.jobs[j].operations[k].options for j, k in keys)):
        chosen = dict(zip(keys, choice, strict=True))
        for order in orders([0] * instance.n_jobs):
            job_free = [job.release for job in instance.jobs]
            machine_free = [0] * instance.n_machines
            done = []
            for j, k in order:
                machine, duration = chosen[(j, k)]
                start = max(job_free[j], machine_free[machine])
                job_free[j] = machine_free[machine] = start + duration
                done.append(ScheduledOp(job=j, op=k, machine=machine, start=start, end=start + duration))
            value = cost(instance, Schedule(operations=done))
            best = value if best is None else min(best, value)
    return best


def makespan(instance, schedule):
    return schedule.makespan


def weighted_tardiness(instance, schedule):
    return figures(instance, schedule).weighted_tardiness


# Three jobs, three machines, every operation with two machines to choose from. Its optimum
# is 6 (the work alone allows 5; machine 0 alone, on first options, would need 12).
FLEXIBLE = hand_made(
    [
        [((0, 3), (1, 5)), ((1, 2), (2, 4))],
        [((0, 3), (2, 4)), ((0, 2), (1, 3))],
        [((1, 3), (2, 3)), ((0, 4), (2, 2))],
    ],
    machines=3,
)


def test_ft06_is_proven_optimal_at_55():
    result = cpsat.solve(standard(FT06, "ft06"), time_limit=10)

    assert result.optimal and result.status == "OPTIMAL"
    assert result.makespan == result.lower_bound == 55
    assert result.gap == 0.0
    assert result.wall_seconds < 5
    validate(standard(FT06, "ft06"), result.schedule)


def test_la01_reaches_its_optimum_666():
    result = cpsat.solve(standard(LA01, "la01"), time_limit=10)

    assert result.makespan == 666
    assert result.optimal


def test_time_limit_is_held_within_a_second_on_ta01():
    instance = standard(TA01, "ta01")
    started = time.monotonic()
    result = cpsat.solve(instance, time_limit=2)
    wall = time.monotonic() - started

    assert wall <= 3
    assert result.wall_seconds <= 3
    assert result.schedule is not None
    assert result.optimal or result.lower_bound < result.makespan
    assert result.gap == pytest.approx((result.makespan - result.lower_bound) / result.makespan)
    assert result.makespan >= 1231  # the proven optimum: nothing may beat it


def test_same_seed_gives_the_same_schedule_when_solved_to_optimality():
    instance = standard(LA01, "la01")
    first = cpsat.solve(instance, time_limit=10, seed=7)
    second = cpsat.solve(instance, time_limit=10, seed=7)

    assert first.optimal and second.optimal
    assert first.schedule.operations == second.schedule.operations


def test_same_seed_gives_the_same_schedule_when_cut_by_the_work_limit():
    # A wall-clock cut depends on the machine's speed and load; the work limit does not.
    instance = standard(TA01, "ta01")
    first = cpsat.solve(instance, time_limit=20, seed=3, work_limit=0.3)
    second = cpsat.solve(instance, time_limit=20, seed=3, work_limit=0.3)

    assert first.status == second.status == "FEASIBLE"
    assert first.schedule.operations == second.schedule.operations
    assert first.lower_bound == second.lower_bound


def test_flexible_job_shop_is_solved_to_its_optimum_6():
    result = cpsat.solve(FLEXIBLE, time_limit=10)

    assert result.optimal
    assert result.makespan == 6 == best_by_enumeration(FLEXIBLE, makespan)
    used = {(o.job, o.op): o.machine for o in result.schedule.operations}
    assert any(used[(j, k)] != FLEXIBLE.jobs[j].operations[k].machine for j, k in used)


def test_release_times_are_respected():
    instance = hand_made(
        [[((0, 4),), ((1, 3),)], [((1, 5),), ((0, 2),)], [((0, 3),), ((1, 4),)]],
        machines=2,
        releases=[0, 6, 2],
    )
    result = cpsat.solve(instance, time_limit=10)

    assert result.optimal
    assert result.makespan == 16 == best_by_enumeration(instance, makespan)
    firsts = {o.job: o.start for o in result.schedule.operations if o.op == 0}
    assert firsts[1] >= 6 and firsts[2] >= 2


def test_weighted_tardiness_reaches_its_optimum():
    # Fractional weights (scaled inside) and a job without a due date, which costs nothing.
    instance = hand_made(
        [[((0, 3),), ((1, 2),)], [((1, 4),), ((0, 3),)], [((0, 2),), ((1, 3),)], [((1, 2),), ((0, 4),)]],
        machines=2,
        dues=[6, 8, 5, None],
        weights=[1.0, 1.5, 2.0, 1.0],
    )
    result = cpsat.solve(instance, time_limit=10, objective="weighted_tardiness")

    assert result.optimal
    assert result.objective == "weighted_tardiness"
    assert result.objective_value == pytest.approx(7.0)
    assert best_by_enumeration(instance, weighted_tardiness) == pytest.approx(7.0)
    assert figures(instance, result.schedule).weighted_tardiness == pytest.approx(7.0)
    assert result.lower_bound == pytest.approx(7.0)


def test_hinted_solve_is_at_least_as_good_as_the_hint():
    instance = standard(LA16, "la16")
    hint = dispatch(instance)
    validate(instance, hint)
    result = cpsat.solve(instance, time_limit=1, hint=hint)

    assert result.schedule is not None
    assert result.makespan <= hint.makespan
    assert result.makespan >= 945  # la16's optimum


def test_progress_reports_solutions_and_should_stop_ends_the_search():
    instance = standard(TA01, "ta01")
    calls = []
    result = cpsat.solve(
        instance,
        time_limit=20,
        hint=dispatch(instance),
        progress=lambda fraction, message: calls.append((fraction, message)),
        should_stop=lambda: len(calls) >= 2,
    )

    assert result.stopped
    assert result.wall_seconds < 5
    assert result.schedule is not None
    assert calls[0][1].startswith("best ")
    assert calls[-1][0] == 1.0 and calls[-1][1].startswith("FEASIBLE")
    assert all(0 <= fraction <= 1 for fraction, _ in calls)


def test_should_stop_is_asked_between_solutions_too():
    started = time.monotonic()
    result = cpsat.solve(standard(TA01, "ta01"), time_limit=20, should_stop=lambda: time.monotonic() - started > 0.5)

    assert result.stopped
    assert result.wall_seconds < 2
    assert result.schedule is not None


def test_unknown_objective_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="Unknown objective 'tardiness': use one of makespan, weighted_tardiness"):
        cpsat.solve(FLEXIBLE, time_limit=1, objective="tardiness")


def test_invalid_hint_is_refused():
    broken = Schedule(operations=[ScheduledOp(job=0, op=0, machine=2, start=0, end=3)])
    with pytest.raises(ValueError, match="Job 0, operation 0 runs on machine 2, which cannot run it"):
        cpsat.solve(FLEXIBLE, time_limit=1, hint=broken)
