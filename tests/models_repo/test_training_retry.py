"""A training whose worker is lost gets one more attempt (models_repo.jobkinds), and that attempt takes the run
over cleanly: the lost attempt's epochs are dropped, the run ends once with one history, one model version and
one artifact; a lost attempt that comes back changes nothing and keeps nothing.

The attempts are played here in one process (claim, handler, the reaper) so each step can be looked at;
tests/faults/test_worker_kills.py kills real workers.
"""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from lepton.jobs import runner
from lepton.jobs.dispatcher import reap
from lepton.jobs.models import Job, JobStatus
from lepton.jobs.registry import get_kind
from lepton.models import AuditEvent
from models_repo import services
from models_repo.models import ModelVersion, RunStatus, TrainingRun
from models_repo.services import training
from tests.faults.conftest import lake_report
from tests.models_repo.conftest import SPEC

pytestmark = pytest.mark.django_db

KERAS = {
    **SPEC,
    "features": ["温度", "pressure"],
    "algorithms": [{"name": "keras_mlp"}],
    "keras": {"epochs": 3, "units": 8, "batch_size": 32, "patience": 0},
}
# What the lost attempt had recorded when its worker died: more epochs than the new attempt will run.
STALE_EPOCHS = [{"epoch": n, "loss": 99.0} for n in range(1, 6)]


def _attempt(run) -> runner.JobContext:
    """A worker claims the run's job: the context its handler gets."""
    job = runner.claim(run.job_id, "worker@host")
    assert job is not None
    return runner.JobContext(job, job.attempts, get_kind(job.kind).time_limit)


def _handle(ctx) -> dict:
    return get_kind(ctx.job.kind).handler(ctx, ctx.job.params)


def _lose(ctx, run) -> None:
    """The attempt's worker dies mid-training: the run keeps what it had recorded; the reaper requeues the job."""
    TrainingRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, epochs=STALE_EPOCHS)
    Job.objects.filter(pk=ctx.job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert reap()["queued"] == [ctx.job.pk]


def test_trainings_and_their_analysis_have_two_attempts():
    kinds = ("models_repo.train", "models_repo.train_gpu", "models_repo.train_gpu_or_cpu", "models_repo.analyse")
    assert {get_kind(name).max_attempts for name in kinds} == {2}


@pytest.mark.parametrize("spec", [SPEC, KERAS], ids=["sklearn", "keras"])
def test_the_attempt_after_a_lost_one_takes_the_run_over_and_ends_it_once_with_one_history(
    own_lake, member, inspections, predictor, spec
):
    run = services.training_start(actor=member, dataset_version=inspections, spec=spec, registered_model=predictor)
    _lose(_attempt(run), run)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.job.status == JobStatus.QUEUED  # waiting for its second attempt
    retaken = timezone.now()

    result = _handle(_attempt(run))

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.job.attempts == 2, run.error_message
    assert result["run"] == str(run.pk) and run.started_at >= retaken
    epochs = [e["epoch"] for e in run.epochs]
    if spec is KERAS:
        assert epochs == list(range(1, run.params["epochs_run"] + 1)) == [1, 2, 3]
        assert all(e["loss"] != 99.0 for e in run.epochs)
    else:
        assert epochs == []  # scikit-learn records no epochs: the lost attempt's are gone
    assert ModelVersion.objects.filter(run=run).count() == 1
    assert AuditEvent.objects.filter(object_id=str(run.pk), action="run.succeeded").count() == 1
    report = lake_report(own_lake)
    assert report.clean and run.artifact_sha256 in report.blobs, report


def test_a_lost_attempt_that_comes_back_changes_nothing_and_keeps_no_artifact(
    own_lake, member, inspections, predictor, monkeypatch
):
    run = services.training_start(actor=member, dataset_version=inspections, spec=SPEC, registered_model=predictor)
    first = _attempt(run)
    measure = training._resources

    def handed_on_meanwhile(*args, **kwargs):
        # Between storing its artifact and finishing the run, this worker was taken for dead and
        # another attempt claimed the job (the reaper, then another worker's claim).
        Job.objects.filter(pk=run.job_id).update(attempts=2, heartbeat_at=timezone.now())
        return measure(*args, **kwargs)

    monkeypatch.setattr(training, "_resources", handed_on_meanwhile)
    _handle(first)

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.artifact_sha256 == ""  # still the second attempt's to finish
    assert not ModelVersion.objects.filter(run=run).exists()
    assert not AuditEvent.objects.filter(object_id=str(run.pk), action__in=["run.succeeded", "run.failed"]).exists()
    report = lake_report(own_lake)
    assert report.clean and report.blobs == {inspections.raw_sha256, inspections.parquet_sha256}, report


def test_a_lost_attempt_that_comes_back_cannot_claim_or_fail_the_run(member, inspections):
    run = services.training_start(actor=member, dataset_version=inspections, spec=SPEC)
    first = _attempt(run)
    Job.objects.filter(pk=run.job_id).update(attempts=2)  # handed on before it reached the run

    assert services.training_execute(run.pk, attempt=first.attempt).status == RunStatus.QUEUED
    services.training_abandon(run.pk, "late error of the lost attempt", attempt=first.attempt)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.error_message == ""


def test_a_transient_error_keeps_the_run_for_the_second_attempt_and_fails_it_on_the_last(member, inspections, monkeypatch):
    run = services.training_start(actor=member, dataset_version=inspections, spec=SPEC)

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(training, "_named_parquet", database_gone)
    first = _attempt(run)
    with pytest.raises(OperationalError) as error:
        _handle(first)
    assert runner._retry_or_fail(first.job, first.attempt, error.value) == "retrying"
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING  # not failed: the next attempt takes it over

    Job.objects.filter(pk=run.job_id).update(not_before=None)
    second = _attempt(run)
    with pytest.raises(OperationalError):
        _handle(second)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "OperationalError" in run.error_message
