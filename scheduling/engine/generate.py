"""Generated job shops (Taillard's way): each job visits every machine once in a random order.

Durations are drawn uniformly from 1 to 99 as in Taillard's benchmark; due dates, when asked,
are the job's release plus `due_factor` × its own work (the total work divided evenly would be
too tight for the last jobs); machines can get an MTBF and MTTR for breakdown studies. Used
by the demo, the tests and bench/ (quality is checked on generated shops too, not only on
the public ones).
"""

from __future__ import annotations

import numpy as np

from scheduling.engine.instance import Instance, Job, Machine, Operation


def generate(
    n_jobs: int,
    n_machines: int,
    *,
    seed: int,
    low: int = 1,
    high: int = 99,
    due_factor: float | None = None,
    mtbf: float | None = None,
    mttr: float | None = None,
    names: tuple[list[str], list[str]] | None = None,
) -> Instance:
    """A checked random job shop; the same arguments always give the same shop."""
    rng = np.random.default_rng([seed, n_jobs, n_machines])
    job_names, machine_names = names or ([f"J{j}" for j in range(n_jobs)], [f"M{m}" for m in range(n_machines)])
    jobs = []
    for j in range(n_jobs):
        order = rng.permutation(n_machines)
        durations = rng.integers(low, high + 1, size=n_machines)
        work = int(durations.sum())
        due = round(due_factor * work) if due_factor is not None else None
        weight = float(rng.choice([1, 1, 2, 3])) if due_factor is not None else 1.0
        jobs.append(
            Job(
                name=job_names[j],
                operations=tuple(Operation(((int(m), int(d)),)) for m, d in zip(order, durations, strict=True)),
                due=due,
                weight=weight,
            )
        )
    machines = []
    for m in range(n_machines):
        if mtbf is not None and mttr is not None:  # each machine a little different around the shop's figures
            spread = float(rng.uniform(0.7, 1.3))
            machines.append(Machine(machine_names[m], mtbf=round(mtbf * spread), mttr=round(mttr / spread, 1)))
        else:
            machines.append(Machine(machine_names[m]))
    return Instance(jobs=tuple(jobs), machines=tuple(machines), name=f"generated {n_jobs}x{n_machines} seed {seed}").check()
