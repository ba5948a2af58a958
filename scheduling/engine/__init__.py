"""The scheduling engine: plain data in, plain data out, no Django.

- `instance`: the problem (machines, jobs, operations with their machine options); size limits.
- `schedule`: a schedule, its independent validator and its figures (makespan, tardiness, utilisation).
- `simulator`: the shop, one dispatching decision at a time (non-delay or active), breakdowns
  as they happen, and the right-shift repair of a fixed plan.
- `rules`: the dispatching rules (FIFO, SPT, LPT, MWKR, MOR, LOR, EDD, critical ratio, random).
- `formats`: OR-Library, Taillard and CSV files in (errors with line and column), OR-Library out.
- `solve`: one entry point for every method by name (the CLI, the services and bench/ use it).
- `qlearning`: the Q-learning scheduler (which rule decides each choice), its reusable policy.
- `family`: one policy trained over a family of generated shops, measured on unseen ones, checked before use.
- `improve`: the improvement phase (tabu search on the critical path, moves chosen by Q-learning).
- `robustness`: a plan under seeded breakdowns: right shift against re-dispatch (rule or policy).
- `cpsat` (in its own process: `cpsat_process`), `generate` (Taillard-style shops).
"""
