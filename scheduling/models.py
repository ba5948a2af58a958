"""Production scheduling: shop problems, the runs that schedule them, and the operations of each schedule.

State changes go through scheduling/services.py; the computation (the simulator, the rules,
Q-learning, CP-SAT) lives in scheduling/engine/ and knows nothing of these tables.
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# A run's states are its job's (queued → running → succeeded | failed | cancelled).
from lepton.jobs.models import JobStatus as RunStatus


class ProblemSource(models.TextChoices):
    FORM = "form", _("Entered in the browser")
    UPLOAD = "upload", _("Uploaded file")
    DATASET = "dataset", _("Built from a dataset")
    API = "api", _("Sent through the API")
    DEMO = "demo", _("Demo")


class ShopProblem(models.Model):
    """A department's shop: machines, jobs and their operations (scheduling.engine.instance, as JSON).

    `machines`: [{"name", "mtbf", "mttr"}]; `jobs`: [{"name", "release", "due", "weight",
    "operations": [[[machine, duration], …], …]}] — each operation a list of (machine, duration)
    options. Checked by the engine before it is stored; immutable once a run used it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.PROTECT, related_name="shop_problems")
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    # Other departments see the name and description of a discoverable problem and may ask for access.
    discoverable = models.BooleanField(default=False)
    description = models.TextField(blank=True)
    machines = models.JSONField(default=list)
    jobs = models.JSONField(default=list)
    n_jobs = models.PositiveIntegerField(default=0)
    n_machines = models.PositiveIntegerField(default=0)
    n_operations = models.PositiveIntegerField(default=0)
    flexible = models.BooleanField(default=False)
    best_known = models.PositiveIntegerField(null=True, blank=True, help_text=_("A published optimum or bound."))
    source = models.CharField(max_length=20, choices=ProblemSource.choices, default=ProblemSource.FORM)
    source_format = models.CharField(max_length=20, blank=True)
    # What it was made from, kept as labels so a purged dataset leaves a readable record:
    # {"kind": "dataset", "dataset_version": id, "dataset": "dept.slug", "dataset_name", "version": n,
    # "mapping": {role: column}} or {"kind": "copy", "problem": id, "name"} (scheduling.services).
    origin = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["department__name", "name"]
        constraints = [models.UniqueConstraint(fields=["department", "slug"], name="shop_problem_unique_slug")]

    def __str__(self) -> str:
        return f"{self.department.slug}/{self.slug}"

    def get_absolute_url(self) -> str:
        return reverse("scheduling:problem", args=[self.pk])  # the data lake's lineage links problems built from data


class Method(models.TextChoices):
    QLEARNING = "qlearning", _("Q-learning")
    CPSAT = "cpsat", _("CP-SAT (exact reference)")
    FIFO = "fifo", _("FIFO")
    SPT = "spt", _("Shortest processing time")
    LPT = "lpt", _("Longest processing time")
    MWKR = "mwkr", _("Most work remaining")
    MOR = "mor", _("Most operations remaining")
    LOR = "lor", _("Fewest operations remaining")
    EDD = "edd", _("Earliest due date")
    CR = "cr", _("Critical ratio")
    RANDOM = "random", _("Random")
    POLICY = "policy", _("Learnt policy (no retraining)")


class ScheduleRun(models.Model):
    """One method run on one problem (a Job runs it): its schedule and figures, or why there is none."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    department = models.ForeignKey("lepton.Department", on_delete=models.PROTECT, related_name="schedule_runs")
    problem = models.ForeignKey(ShopProblem, on_delete=models.CASCADE, related_name="runs")
    method = models.CharField(max_length=20, choices=Method.choices)
    params = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    time_limit = models.FloatField(default=10.0)
    breakdowns_seed = models.IntegerField(null=True, blank=True, help_text=_("Simulate breakdowns drawn from this seed."))
    # The learnt policy a `policy` run applies (a models_repo version of task scheduling_policy: scheduling.policies).
    policy_version = models.ForeignKey(
        "models_repo.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True)
    job = models.ForeignKey("lepton.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    makespan = models.PositiveIntegerField(null=True, blank=True)
    total_tardiness = models.PositiveIntegerField(null=True, blank=True)
    weighted_tardiness = models.FloatField(null=True, blank=True)
    utilisation = models.JSONField(default=list, blank=True)  # per machine, busy / makespan
    lower_bound = models.PositiveIntegerField(null=True, blank=True)  # CP-SAT's proven bound
    optimal = models.BooleanField(default=False)
    downtimes = models.JSONField(default=list, blank=True)  # [[machine, start, end]] of simulated breakdowns
    interrupted = models.JSONField(default=list, blank=True)  # [[job, op, machine, start, end]] runs cut short
    info = models.JSONField(default=dict, blank=True)  # method details: learning curve, rules, which phase won
    error_message = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["problem", "-created_at"], name="schedule_run_problem_idx")]

    def __str__(self) -> str:
        return f"{self.problem} · {self.method} ({self.get_status_display()})"


class ScheduledOperation(models.Model):
    """One operation of a run's schedule: job and operation numbers as in the problem, machine, times."""

    run = models.ForeignKey(ScheduleRun, on_delete=models.CASCADE, related_name="operations")
    job = models.PositiveIntegerField()
    op = models.PositiveIntegerField()
    machine = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()

    class Meta:
        ordering = ["run", "start", "machine", "job"]
        constraints = [models.UniqueConstraint(fields=["run", "job", "op"], name="scheduled_operation_once")]

    def __str__(self) -> str:
        return f"job {self.job} op {self.op} on machine {self.machine}: {self.start}–{self.end}"
