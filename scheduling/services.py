"""Every change to shop problems and schedule runs: one function per use case, audited.

A problem is checked by the engine (scheduling.engine.instance) before it is stored, so a stored
problem can always be scheduled. A run is a Job on the cpu queue (kind `scheduling.solve`);
its worker writes the schedule, validated by the engine, in one transaction.
"""

from __future__ import annotations

import json
import math

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from lepton import audit, policy
from lepton.errors import Conflict, Forbidden, Invalid, NotFound
from lepton.i18n import error_text, translated, translated_all
from lepton.jobs.services import job_submit
from scheduling.engine.instance import Instance, InstanceError, Job, Machine, Operation, from_dict, to_dict
from scheduling.models import Method, ProblemSource, RunStatus, ScheduledOperation, ScheduleRun, ShopProblem

SOLVE_KIND = "scheduling.solve"
MAX_TIME_LIMIT = 3600.0  # seconds one run may search
MAX_SIZE_TEXT = 5 * 1024 * 1024  # bytes of an uploaded problem file


# --- problems ---------------------------------------------------------------------------------------


def instance_error_text(exc: InstanceError) -> str:
    """`exc`'s message in the active language (the request's): the engine words it in English, with
    a gettext_noop template and parameters, so that it is translated here (engine.instance.Phrase)."""
    params = {key: translated(value) for key, value in exc.params.items()}
    text = _(exc.template) % params if params else _(exc.template)
    if exc.line is None:
        return text
    if exc.column is None:
        return _("line %(line)s: ") % {"line": exc.line} + text
    return _("line %(line)s, column %(column)s: ") % {"line": exc.line, "column": exc.column} + text


def instance_of(problem: ShopProblem) -> Instance:
    """The engine's view of a stored problem (stored in engine.instance.to_dict's shape)."""
    return from_dict({"name": problem.name, "best_known": problem.best_known, "machines": problem.machines, "jobs": problem.jobs})


def engine_error_text(exc: Exception) -> str:
    """An engine exception's message in the active language (the job's, or the request's): its
    Phrase translated (scheduling.engine marks every message it raises), else its text as it is."""
    if isinstance(exc, InstanceError):
        return instance_error_text(exc)
    return error_text(exc)


def instance_from_data(machines, jobs) -> Instance:
    """An Instance from the API's JSON (the shape ShopProblem stores); InstanceError naming the field."""
    if not isinstance(machines, list) or not isinstance(jobs, list):
        raise InstanceError(
            gettext_noop("machines and jobs must be lists."), field="machines" if not isinstance(machines, list) else "jobs"
        )
    built_machines = []
    for m, machine in enumerate(machines):
        if not isinstance(machine, dict) or not str(machine.get("name", "")).strip():
            raise InstanceError(gettext_noop("Each machine needs a name."), field=f"machines.{m}.name")
        rates = []
        for key in ("mtbf", "mttr"):
            value = machine.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)):
                raise InstanceError(gettext_noop("%(key)s must be a number."), field=f"machines.{m}.{key}", key=key)
            rates.append(value)
        built_machines.append(Machine(str(machine["name"]).strip()[:100], *rates))
    built_jobs = []
    for j, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise InstanceError(gettext_noop("Each job must be an object."), field=f"jobs.{j}")
        operations = job.get("operations")
        if not isinstance(operations, list):
            raise InstanceError(gettext_noop("operations must be a list."), field=f"jobs.{j}.operations")
        built_ops = []
        for k, options in enumerate(operations):
            if isinstance(options, dict):  # {"machine": m, "duration": d} for a single machine
                options = [[options.get("machine"), options.get("duration")]]
            if not isinstance(options, list) or not options:
                raise InstanceError(
                    gettext_noop("An operation is a list of [machine, duration] pairs."), field=f"jobs.{j}.operations.{k}"
                )
            pairs = []
            for pair in options:
                if (
                    not isinstance(pair, list | tuple)
                    or len(pair) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in pair)
                ):
                    raise InstanceError(
                        gettext_noop("Each option is [machine, duration], two whole numbers."),
                        field=f"jobs.{j}.operations.{k}",
                    )
                pairs.append((pair[0], pair[1]))
            built_ops.append(Operation(tuple(pairs)))
        for key in ("release", "due"):
            value = job.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InstanceError(gettext_noop("%(key)s must be a whole number."), field=f"jobs.{j}.{key}", key=key)
        weight = job.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise InstanceError(gettext_noop("weight must be a number."), field=f"jobs.{j}.weight")
        built_jobs.append(
            Job(
                name=str(job.get("name") or f"J{j}")[:100],
                operations=tuple(built_ops),
                release=job.get("release") or 0,
                due=job.get("due"),
                weight=float(weight),
            )
        )
    return Instance(jobs=tuple(built_jobs), machines=tuple(built_machines)).check()


def _may_add(actor, department) -> None:
    """Members and above add problems to their department; others get 404 (not theirs) or 403 (their role)."""
    if not policy.can(actor, "view", department):
        raise NotFound()
    if not policy.can(actor, "submit", department):
        raise Forbidden(_("Your role in this department does not allow adding problems (members and above may)."))


def _invalid(exc: InstanceError) -> Invalid:
    message = instance_error_text(exc)
    return Invalid(message, fields={exc.field: [message]}, code="invalid_problem")


def problem_create(
    *,
    actor,
    department,
    name: str,
    instance: Instance,
    source: str = ProblemSource.API,
    source_format: str = "",
    description: str = "",
    slug: str = "",
    origin: dict | None = None,
) -> ShopProblem:
    """Store a checked shop problem in `department` (members and above).

    `origin` records what it was made from (a dataset version and its column mapping, or the
    problem it copies); it is shown on the problem's page and written to the audit event.
    """
    _may_add(actor, department)
    name = (name or "").strip()
    if not name:
        raise Invalid(_("A problem needs a name."), fields={"name": [_("A problem needs a name.")]})
    try:
        instance.check()
    except InstanceError as exc:
        raise _invalid(exc) from None
    slug = slugify(slug or name)[:80] or f"shop-{timezone.now():%Y%m%d%H%M%S}"
    data = to_dict(instance)
    with transaction.atomic():
        if ShopProblem.objects.filter(department=department, slug=slug).exists():
            message = _("%(department)s already has a problem '%(slug)s'.") % {"department": department.name, "slug": slug}
            raise Invalid(message, fields={"name": [message]}, code="slug_taken")
        problem = ShopProblem.objects.create(
            department=department,
            slug=slug,
            name=name[:200],
            description=description or "",
            machines=data["machines"],
            jobs=data["jobs"],
            n_jobs=instance.n_jobs,
            n_machines=instance.n_machines,
            n_operations=instance.n_operations,
            flexible=instance.flexible,
            best_known=instance.best_known,
            source=source,
            source_format=source_format,
            origin=origin or {},
            created_by=actor,
        )
        audit.record(
            actor=actor,
            action="problem.create",
            obj=problem,
            changes={"name": problem.name, "jobs": problem.n_jobs, "machines": problem.n_machines, "source": source}
            | ({"origin": origin} if origin else {}),
        )
    return problem


def problem_upload(*, actor, department, name: str, text: str, format: str | None = None) -> ShopProblem:
    """A problem read from an OR-Library, Taillard or CSV file (scheduling.engine.formats)."""
    from scheduling.engine import formats

    if len(text.encode()) > MAX_SIZE_TEXT:
        message = _("The file is larger than %(mb)s MB.") % {"mb": MAX_SIZE_TEXT // (1024 * 1024)}
        raise Invalid(message, fields={"file": [message]}, code="too_large")
    try:
        instance = formats.read(text, format=format or None, name=name)
    except InstanceError as exc:
        message = instance_error_text(exc)
        raise Invalid(message, fields={"file": [message]}, code="invalid_problem") from None
    return problem_create(
        actor=actor, department=department, name=name, instance=instance, source=ProblemSource.UPLOAD,
        source_format=instance.meta.get("format", format or ""),
    )  # fmt: skip


# --- problems from tables: a dataset version's rows, the browser's editor ------------------------------

# What each role of a dataset mapping accepts: kinds of Arrow types (see _arrow_kind), and how to say
# so. The values themselves are checked row by row by engine.table.from_columns.
NUMBERS = ("integer", "number")
MAPPING_KINDS = {
    "job": (("integer", "number", "string", "boolean", "datetime"), gettext_lazy("single values (not lists or records)")),
    "sequence": (NUMBERS, gettext_lazy("whole numbers")),
    "machine": (("integer", "number", "string"), gettext_lazy("names or numbers")),
    "duration": (NUMBERS, gettext_lazy("whole numbers")),
    "due": (NUMBERS, gettext_lazy("whole numbers")),
    "release": (NUMBERS, gettext_lazy("whole numbers")),
    "weight": (NUMBERS, gettext_lazy("numbers")),
}
KIND_NAMES = {
    "integer": gettext_lazy("whole numbers"),
    "number": gettext_lazy("numbers"),
    "string": gettext_lazy("text"),
    "boolean": gettext_lazy("yes/no values"),
    "datetime": gettext_lazy("dates"),
    "other": gettext_lazy("lists or records"),
}


def _arrow_kind(arrow_type) -> str:
    """ "integer", "number", "string", "boolean", "datetime" or "other" for a Parquet column's Arrow type."""
    import pyarrow as pa

    checks = (
        ("integer", pa.types.is_integer),
        ("number", lambda t: pa.types.is_floating(t) or pa.types.is_decimal(t)),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)),
        ("boolean", pa.types.is_boolean),
        ("datetime", pa.types.is_temporal),
    )
    return next((kind for kind, check in checks if check(arrow_type)), "other")


def _table_instance(build, field_of) -> Instance:
    """`build()` (an engine.table builder) checked as instance_from_data checks every problem; a refusal
    becomes Invalid on the field `field_of(place, exc)` names, with its message: (field, message)."""
    from scheduling.engine.table import TableError

    built = None
    try:
        built = build()
        return instance_from_data(built.machines, built.jobs)
    except InstanceError as exc:
        if isinstance(exc, TableError):
            place = (exc.table, exc.row, exc.column)
        else:
            place = built.locate(exc.field) if built is not None else None
        field, message = field_of(place, exc)
        raise Invalid(message, fields={field: [message]}, code="invalid_problem") from None


def _mapped_columns(version, mapping, *, actor, alternatives: bool = False) -> dict[str, list]:
    """{role: the values of its column} of a published version; Invalid naming `mapping.<role>` for a
    role that is unknown or missing (the sequence too, with `alternatives`), a column the version
    lacks, or a column whose type the role cannot take."""
    import pyarrow.parquet as pq

    from scheduling.engine.table import REQUIRED_ROLES, ROLES

    def refuse(role: str, message: str):
        field = f"mapping.{role}" if role else "mapping"
        return Invalid(message, fields={field: [message]}, code="invalid_mapping")

    if not isinstance(mapping, dict):
        raise refuse("", _("The mapping is an object: {role: column name}, with at least job, machine and duration."))
    for role in mapping:
        if role not in ROLES:
            raise refuse(
                role,
                _("Unknown key '%(role)s' in the mapping; the keys are %(roles)s.") % {"role": role, "roles": ", ".join(ROLES)},
            )
    mapping = {role: column for role, column in mapping.items() if column not in (None, "")}
    for role in REQUIRED_ROLES:
        if role not in mapping:
            raise refuse(role, _("Choose the column that gives the %(role)s.") % {"role": role})
    if alternatives and "sequence" not in mapping:
        raise refuse(
            "sequence",
            _(
                "With alternative machines, choose the column that gives the sequence: "
                "the rows of one operation share its job and sequence."
            ),
        )
    names = {c["name"]: c.get("identifier", c["name"]) for c in version.schema}
    for role, column in mapping.items():
        if not isinstance(column, str) or column not in names:
            message = _("The version has no column '%(column)s' (its columns: %(columns)s).") % {
                "column": column, "columns": ", ".join(list(names)[:30]),
            }  # fmt: skip
            raise refuse(role, message)
    from datalake.services.sensitive import readable_parquet

    # Through the data lake's one read path: a sensitive column is masked (hidden: not there)
    # unless the actor may unmask it.
    with readable_parquet(version, actor, purpose="scheduling", check_access=False) as readable:
        schema = pq.read_schema(readable.path)
        for role, column in mapping.items():
            if names[column] not in schema.names:
                message = _("Column '%(column)s' is sensitive and hidden from you.") % {"column": column}
                raise refuse(role, message)
            kind = _arrow_kind(schema.field(names[column]).type)
            kinds, wanted = MAPPING_KINDS[role]
            if kind not in kinds:
                message = _("Column '%(column)s' holds %(kind)s; the %(role)s needs %(wanted)s.") % {
                    "column": column, "kind": KIND_NAMES[kind], "role": role, "wanted": wanted,
                }  # fmt: skip
                raise refuse(role, message)
        table = pq.read_table(readable.path, columns=sorted({names[column] for column in mapping.values()}))
    return {role: table.column(names[column]).to_pylist() for role, column in mapping.items()}


def problem_from_dataset(
    *, actor, department, name: str, dataset_version, mapping: dict, description: str = "", alternatives: bool = False
) -> ShopProblem:
    """A problem built from a dataset version the actor may read (own department's or shared), one row per
    operation, its columns chosen by `mapping` ({role: column}; roles in engine.table.ROLES; job, machine
    and duration required). With `alternatives` (the flexible job shop), the rows that share a job and a
    sequence are one operation, one row per machine that can run it (engine.table.from_columns).
    Refusals name `dataset_version` or `mapping.<role>` (with the row); the problem records the version
    and the mapping, and the lineage gets an edge from the version to it.
    """
    from datalake import selectors as datalake_selectors
    from datalake.models import VersionStatus
    from datalake.services import lineage_add
    from scheduling.engine import table
    from scheduling.engine.instance import MAX_OPERATIONS

    _may_add(actor, department)
    if dataset_version is None or not datalake_selectors.datasets_visible(actor).filter(pk=dataset_version.dataset_id).exists():
        message = _("No dataset version you may read has this id.")
        raise NotFound(message, fields={"dataset_version": [message]})
    if alternatives:
        too_many = _("The version has %(rows)s rows: above the limit of %(max)s rows (one per operation and machine).")
    else:
        too_many = _("The version has %(rows)s rows: above the limit of %(max)s operations (one row per operation).")
    for refused, message in (
        (dataset_version.status != VersionStatus.PUBLISHED, _("Only a published version can be read.")),
        (not dataset_version.row_count, _("The dataset version has no rows: the problem would be empty.")),
        (
            (dataset_version.row_count or 0) > MAX_OPERATIONS,
            too_many % {"rows": dataset_version.row_count, "max": MAX_OPERATIONS},
        ),
    ):
        if refused:
            raise Invalid(message, fields={"dataset_version": [message]}, code="invalid_dataset")
    columns = _mapped_columns(dataset_version, mapping, actor=actor, alternatives=alternatives)

    def field_of(place, exc):
        if place is None:
            return "dataset_version", instance_error_text(exc)
        where, row, column = place
        role = {"jobs": "job", "machines": "machine"}.get(where, column) if column == "name" else column
        prefix = "" if isinstance(exc, table.TableError) else _("row %(row)s: ") % {"row": row + 1}
        return f"mapping.{role}", prefix + instance_error_text(exc)

    instance = _table_instance(lambda: table.from_columns(columns, alternatives=alternatives), field_of)
    dataset = dataset_version.dataset
    origin = {
        "kind": "dataset",
        "dataset_version": str(dataset_version.pk),
        "dataset": f"{dataset.department.slug}.{dataset.slug}",
        "dataset_name": dataset.name,
        "version": dataset_version.number,
        "mapping": {role: column for role, column in mapping.items() if column not in (None, "")},
    } | ({"alternatives": True} if alternatives else {})
    with transaction.atomic():
        problem = problem_create(
            actor=actor, department=department, name=name, instance=instance, source=ProblemSource.DATASET,
            source_format="dataset", description=description, origin=origin,
        )  # fmt: skip
        lineage_add(from_obj=dataset_version, to_obj=problem)
    return problem


def problem_from_tables(
    *, actor, department, name: str, machines: list, jobs: list, operations: list, description: str = "", copy_of=None
) -> ShopProblem:
    """A problem entered in the browser's table editor (engine.table.from_tables: None rows are blank ones).

    A refusal names `<table>.<row>.<column>` (rows numbered as given) so the editor shows it on that
    row, or `problem` for the whole. `copy_of`: the problem this one was copied from and edited.
    """
    from scheduling.engine import table

    _may_add(actor, department)

    def field_of(place, exc):
        return ("problem" if place is None else "{}.{}.{}".format(*place)), instance_error_text(exc)

    instance = _table_instance(lambda: table.from_tables(machines, jobs, operations), field_of)
    origin = {"kind": "copy", "problem": str(copy_of.pk), "name": copy_of.name} if copy_of is not None else None
    return problem_create(
        actor=actor, department=department, name=name, instance=instance, source=ProblemSource.FORM,
        description=description, origin=origin,
    )  # fmt: skip


def problem_set_discoverable(*, actor, problem: ShopProblem, discoverable: bool) -> ShopProblem:
    """Let other departments see the problem's name and description and ask for access, or stop (maintainers)."""
    policy.require(actor, "share", problem)
    with transaction.atomic():
        locked = ShopProblem.objects.select_for_update().get(pk=problem.pk)
        if locked.discoverable == bool(discoverable):
            return locked
        locked.discoverable = bool(discoverable)
        locked.save(update_fields=["discoverable"])
        audit.record(
            actor=actor,
            action="problem.update",
            obj=locked,
            changes={"discoverable": [not locked.discoverable, locked.discoverable]},
        )
    return locked


def problem_delete(*, actor, problem: ShopProblem) -> None:
    """Delete a problem with its runs (maintainers); refused while one of its runs is queued or running."""
    policy.require(actor, "delete", problem)
    with transaction.atomic():
        locked = ShopProblem.objects.select_for_update().get(pk=problem.pk)
        if locked.runs.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).exists():
            raise Conflict(_("A run of this problem is still going; cancel it first."), code="run_in_progress")
        audit.record(actor=actor, action="problem.delete", obj=locked, changes={"name": locked.name})
        locked.delete()


# --- runs --------------------------------------------------------------------------------------------


def run_start(
    *,
    actor,
    problem: ShopProblem,
    method: str,
    time_limit: float = 10.0,
    seed: int = 0,
    breakdowns_seed: int | None = None,
    replications: int = 0,
    policy_version=None,
) -> ScheduleRun:
    """Queue `method` on `problem` (members and above, or a `use` share); the worker runs it.

    `replications` (up to 200) also measures how the schedule holds up under that many seeded
    draws of breakdowns (scheduling.engine.robustness), for problems whose machines break down.
    The method `policy` applies `policy_version` (scheduling.policies.policy_find gives one the
    actor may use); one that cannot schedule this problem is refused here, before anything is queued.
    """
    if not policy.can(actor, "view", problem):
        raise NotFound()
    if not policy.can(actor, "use", problem):
        raise Forbidden(_("Your role does not allow scheduling this problem (members and above may)."))
    if method not in Method.values:
        message = _("Unknown method '%(method)s'; choose one of %(names)s.") % {
            "method": method, "names": ", ".join(Method.values),
        }  # fmt: skip
        raise Invalid(message, fields={"method": [message]})
    try:
        time_limit = float(time_limit)
    except (TypeError, ValueError):
        time_limit = math.nan
    if not (0 < time_limit <= MAX_TIME_LIMIT):
        message = _("The time limit must be more than 0 and at most %(max)s seconds.") % {"max": int(MAX_TIME_LIMIT)}
        raise Invalid(message, fields={"time_limit": [message]})
    for key, value in (("seed", seed), ("breakdowns_seed", breakdowns_seed)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31):
            message = _("%(field)s must be a whole number from 0 to 2147483647.") % {"field": key}
            raise Invalid(message, fields={key: [message]})
    from scheduling.engine.robustness import MAX_REPLICATIONS

    if isinstance(replications, bool) or not isinstance(replications, int) or not 0 <= replications <= MAX_REPLICATIONS:
        message = _("replications must be a whole number from 0 to %(max)s.") % {"max": MAX_REPLICATIONS}
        raise Invalid(message, fields={"replications": [message]})
    for key, wanted in (("breakdowns_seed", breakdowns_seed is not None), ("replications", replications > 0)):
        if wanted and not any(m.get("mtbf") for m in problem.machines):
            message = _("No machine of this problem has an MTBF and MTTR: there is nothing to break down.")
            raise Invalid(message, fields={key: [message]})
    _check_policy(actor, problem, method, policy_version, breakdowns_seed is not None)
    with transaction.atomic():
        run = ScheduleRun.objects.create(
            department=problem.department,
            problem=problem,
            method=method,
            seed=seed,
            time_limit=time_limit,
            breakdowns_seed=breakdowns_seed,
            params={"replications": replications} if replications else {},
            policy_version=policy_version if method == Method.POLICY else None,
            created_by=actor,
        )
        run.job = job_submit(
            actor=actor, department=problem.department, kind=SOLVE_KIND, params={"run": str(run.pk)}, user_request=False
        )
        run.save(update_fields=["job"])
        audit.record(
            actor=actor,
            action="run.start",
            obj=run,
            changes={
                "problem": str(problem), "method": method, "time_limit": time_limit, "seed": seed,
                **({"policy": str(policy_version)} if method == Method.POLICY else {}),
            },
        )  # fmt: skip
    return run


def _check_policy(actor, problem: ShopProblem, method: str, version, breakdowns: bool) -> None:
    """The method `policy` needs a policy version the actor may use that can schedule the problem; no other takes one."""
    from scheduling import policies

    if method != Method.POLICY:
        if version is not None:
            message = _("A policy is applied only by the method “%(method)s”.") % {"method": Method.POLICY.label}
            raise Invalid(message, fields={"policy_version": [message]})
        return
    if version is None:
        message = _("Choose the learnt policy to apply.")
        raise Invalid(message, fields={"policy_version": [message]}, code="policy_required")
    policy.require(actor, "use", version.model)
    policies.policy_for_run(version, instance_of(problem), breakdowns=breakdowns)


def run_execute(run_id, *, progress=lambda pct, msg: None, should_stop=lambda: False) -> ScheduleRun:
    """Schedule a run's problem with its method (in a worker); store the validated schedule and figures.

    Claimed with compare-and-set, so a second delivery of the same job does nothing. A method
    stopped early keeps the best schedule it had (Q-learning, CP-SAT); one with none fails.
    """
    from scheduling.engine.schedule import figures, validate
    from scheduling.engine.solve import solve

    claimed = ScheduleRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=timezone.now()
    )
    run = ScheduleRun.objects.select_related("problem").get(pk=run_id)
    if claimed != 1:
        return run
    instance = instance_of(run.problem)
    learnt = None
    if run.method == Method.POLICY:  # no learning: the version's policy builds the schedule
        from scheduling.policies import policy_apply

        result, learnt = policy_apply(run, instance)
    else:
        result = solve(
            instance,
            run.method,
            time_limit=run.time_limit,
            seed=run.seed,
            breakdowns_seed=run.breakdowns_seed,
            # The engine counts 0–1, jobs 0–100; its words (Phrases) in the job's language.
            progress=lambda fraction, message: progress(100 * fraction, message),
            should_stop=should_stop,
        )
    schedule = validate(instance, result.schedule)
    numbers = figures(instance, schedule)
    robustness = None
    if run.params.get("replications"):
        from scheduling.engine import qlearning
        from scheduling.engine import robustness as breakdowns

        progress(99, _("Robustness: %(count)s replications of breakdowns") % {"count": run.params["replications"]})
        policy = result.extra.get("policy")
        learnt = learnt or (qlearning.Policy.from_json(json.dumps(policy)) if policy else None)
        robustness = breakdowns.evaluate(
            instance, schedule, replications=run.params["replications"], seed=run.seed, policy=learnt
        )
    with transaction.atomic():
        run = ScheduleRun.objects.select_for_update().get(pk=run_id)
        ScheduledOperation.objects.bulk_create(
            [
                ScheduledOperation(run=run, job=o.job, op=o.op, machine=o.machine, start=o.start, end=o.end)
                for o in schedule.operations
            ],
            batch_size=2000,
        )
        run.status = RunStatus.SUCCEEDED
        run.makespan = numbers.makespan
        run.total_tardiness = numbers.total_tardiness
        run.weighted_tardiness = numbers.weighted_tardiness
        run.utilisation = [round(u, 4) for u in numbers.utilisation]
        run.downtimes = [[d.machine, d.start, d.end] for d in schedule.downtimes]
        run.interrupted = [[o.job, o.op, o.machine, o.start, o.end] for o in schedule.interrupted]
        run.lower_bound = result.extra.get("lower_bound")
        run.optimal = bool(result.extra.get("optimal"))
        run.info = translated_all({k: v for k, v in result.extra.items() if k not in ("lower_bound", "optimal")})
        if robustness is not None:
            run.info["robustness"] = robustness
        run.finished_at = timezone.now()
        run.save()
    return run


def run_cancel(*, actor, run: ScheduleRun) -> ScheduleRun:
    """Stop a run: a queued one is cancelled at once; a running one stops its search and keeps the
    best schedule it has (the run then succeeds with it, its info saying it was stopped)."""
    from lepton.jobs.models import JobStatus
    from lepton.jobs.services import job_cancel

    policy.require(actor, "view", run)
    if run.job is None or run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        raise Conflict(_("This run has finished; there is nothing to cancel."), code="finished")
    job = job_cancel(actor=actor, job=run.job)
    if job.status == JobStatus.CANCELLED:
        run_abandon(run.pk, _("Cancelled by %(user)s before it started.") % {"user": actor.get_username()}, RunStatus.CANCELLED)
    run.refresh_from_db()
    return run


def run_abandon(run_id, reason: str, status: str = RunStatus.FAILED) -> None:
    """Mark a run that will not finish (its job failed or was cancelled) with the reason."""
    ScheduleRun.objects.filter(pk=run_id, status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).update(
        status=status, error_message=reason[:2000], finished_at=timezone.now()
    )
