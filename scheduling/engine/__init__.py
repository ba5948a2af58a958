"""The scheduling engine: plain data in, plain data out, no Django.

- `instance`: the problem (machines, jobs, operations with their machine options); size limits.
- `schedule`: a schedule, its independent validator and its figures (makespan, tardiness, utilisation).
"""
