"""Alert evaluation of every kind on real rows, deduplication (by the database too), auto-resolve,
notifications and e-mail, rule checks and the periodic registration."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from datalake import services as datalake_services
from lepton.errors import Forbidden, Invalid, NotFound
from lepton.jobs.models import Job, JobStatus
from lepton.models import AuditEvent
from models_repo.models import PredictionLog
from monitoring.alerts import services
from monitoring.alerts.models import Alert, AlertRule, AlertState, Notification
from monitoring.models import FeatureDrift, PredictionRollup, RollupState
from tests.monitoring.alerts import production_model, publish


def drift_row(version, feature, psi, *, end, status="significant"):
    return FeatureDrift.objects.create(
        version=version, feature=feature, window_start=end - timedelta(hours=24), window_end=end,
        kind="numeric", psi=psi, sample_size=300, status=status,
    )  # fmt: skip


@pytest.fixture
def deployed(owner, production):
    return production_model(owner, production)


def rule(owner, production, **values):
    return services.rule_create(actor=owner, department=production, **{"name": "Watch", **values})


# --- drift_psi -------------------------------------------------------------------------------


def test_drift_above_the_threshold_in_the_latest_window_opens_one_alert_per_feature(deployed, owner, member, production):
    model, version = deployed
    now = timezone.now()
    drift_row(version, "温度", 0.9, end=now - timedelta(hours=2))  # an older window: not the latest
    drift_row(version, "温度", 0.41, end=now - timedelta(hours=1))
    drift_row(version, "pressure", 0.05, end=now - timedelta(hours=1), status="stable")
    drift_row(version, "line", None, end=now - timedelta(hours=1), status="insufficient")
    r = rule(owner, production, kind="drift_psi", threshold=0.25)
    assert services.alerts_evaluate() == {"rules": 1, "opened": 1, "resolved": 0, "failed": 0}
    alert = Alert.objects.get(rule=r)
    assert alert.state == AlertState.OPEN and alert.dedup_key == f"drift:{model.pk}:温度"
    assert alert.value == pytest.approx(0.41) and "温度" in alert.message and "0.410" in alert.message
    assert set(Notification.objects.filter(alert=alert).values_list("user__username", flat=True)) == {
        "oscar-owner", "mia-member",
    }  # fmt: skip


def test_drift_below_the_threshold_or_of_another_model_raises_nothing(deployed, owner, production):
    model, version = deployed
    other, other_version = production_model(owner, production, name="Other")
    drift_row(other_version, "x", 0.8, end=timezone.now())
    drift_row(version, "x", 0.2, end=timezone.now())
    rule(owner, production, kind="drift_psi", threshold=0.25, model=model)
    assert services.alerts_evaluate()["opened"] == 0 and not Alert.objects.exists()


def test_a_repeated_condition_keeps_one_alert_and_moves_last_seen(deployed, owner, member, production):
    _model, version = deployed
    drift_row(version, "x", 0.5, end=timezone.now())
    r = rule(owner, production, kind="drift_psi", threshold=0.25)
    first = timezone.now()
    services.alerts_evaluate(now=first)
    services.alerts_evaluate(now=first + timedelta(minutes=1))
    services.alerts_evaluate(now=first + timedelta(minutes=2))
    alert = Alert.objects.get(rule=r)
    assert alert.first_seen_at == first and alert.last_seen_at == first + timedelta(minutes=2)
    assert Notification.objects.filter(alert=alert).count() == 2  # owner and member, once each


def test_the_database_refuses_a_second_unresolved_alert_for_the_same_subject(deployed, owner, production):
    r = rule(owner, production, kind="job_failed")
    Alert.objects.create(rule=r, department=production, kind=r.kind, dedup_key="job:1", message="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(rule=r, department=production, kind=r.kind, dedup_key="job:1", message="b")
    Alert.objects.filter(rule=r).update(state=AlertState.RESOLVED)
    Alert.objects.create(rule=r, department=production, kind=r.kind, dedup_key="job:1", message="again")  # allowed once resolved
    assert Alert.objects.filter(rule=r).count() == 2


def test_an_alert_resolves_itself_when_the_condition_clears_and_a_new_one_opens_when_it_returns(deployed, owner, production):
    _model, version = deployed
    now = timezone.now()
    drift_row(version, "x", 0.5, end=now - timedelta(hours=1))
    r = rule(owner, production, kind="drift_psi", threshold=0.25)
    services.alerts_evaluate(now=now)
    drift_row(version, "x", 0.1, end=now, status="moderate")  # the next window is calm
    assert services.alerts_evaluate(now=now + timedelta(minutes=1))["resolved"] == 1
    alert = Alert.objects.get(rule=r)
    assert alert.state == AlertState.RESOLVED and alert.resolved_by is None and alert.resolved_at == now + timedelta(minutes=1)
    drift_row(version, "x", 0.7, end=now + timedelta(hours=1))
    services.alerts_evaluate(now=now + timedelta(hours=1))
    assert list(Alert.objects.filter(rule=r).order_by("first_seen_at").values_list("state", flat=True)) == ["resolved", "open"]


def test_an_acknowledged_alert_is_not_raised_again_and_still_auto_resolves(deployed, owner, member, production):
    _model, version = deployed
    now = timezone.now()
    drift_row(version, "x", 0.5, end=now - timedelta(hours=1))
    r = rule(owner, production, kind="drift_psi", threshold=0.25)
    services.alerts_evaluate(now=now)
    services.alert_acknowledge(actor=member, alert=Alert.objects.get(rule=r))
    services.alerts_evaluate(now=now + timedelta(minutes=1))
    assert Alert.objects.filter(rule=r).count() == 1 and Alert.objects.get(rule=r).state == AlertState.ACKNOWLEDGED
    drift_row(version, "x", 0.01, end=now, status="stable")
    services.alerts_evaluate(now=now + timedelta(minutes=2))
    assert Alert.objects.get(rule=r).state == AlertState.RESOLVED


# --- error_rate and p99_latency --------------------------------------------------------------
def traffic(model, version, *, at, requests: int, errors: int = 0, latency_ms: float = 20.0) -> None:
    """`requests` logged prediction requests of `version` a second apart before `at`, the first `errors` refused with 500."""
    PredictionLog.objects.bulk_create(
        PredictionLog(
            model=model, version=version, created_at=at - timedelta(seconds=1 + k), latency_ms=latency_ms, rows=1,
            status_code=500 if k < errors else 200, error="server_error" if k < errors else "",
        )
        for k in range(requests)
    )  # fmt: skip


def test_error_rate_above_the_threshold_over_the_window_opens_an_alert(deployed, owner, production):
    model, version = deployed
    quiet, _v = production_model(owner, production, name="Quiet")
    now = timezone.now()
    traffic(model, version, at=now, requests=200, errors=30)
    traffic(model, version, at=now - timedelta(minutes=20), requests=100, errors=100)  # before the window
    r = rule(owner, production, kind="error_rate", threshold=0.05, window_minutes=15)
    services.alerts_evaluate(now=now)
    alert = Alert.objects.get(rule=r)  # one: the quiet model (no requests) raises nothing
    assert alert.dedup_key == f"error_rate:{model.pk}" and alert.value == 0.15 and "15.0% of 200 requests" in alert.message


def test_error_rate_reads_closed_rollups_and_the_raw_tail(deployed, owner, production):
    model, version = deployed
    now = timezone.now().replace(second=30, microsecond=0)
    closed = now.replace(second=0) - timedelta(minutes=2)
    RollupState.objects.create(grain="minute", done_until=closed)
    PredictionRollup.objects.create(
        grain="minute", bucket=closed - timedelta(minutes=3), model=model, version=version, requests=90, errors=45, le_25=90
    )
    traffic(model, version, at=now, requests=10)  # after done_until: read raw
    r = rule(owner, production, kind="error_rate", threshold=0.4, window_minutes=15)
    services.alerts_evaluate(now=now)
    assert Alert.objects.get(rule=r).value == 0.45


def test_p99_latency_above_the_threshold_opens_an_alert_and_clears(deployed, owner, production):
    model, version = deployed
    now = timezone.now()
    traffic(model, version, at=now, requests=50, latency_ms=900.0)
    r = rule(owner, production, kind="p99_latency", threshold=500, window_minutes=15)
    services.alerts_evaluate(now=now)
    assert Alert.objects.get(rule=r).value == 995.0  # within the 500–1000 ms bucket, linearly
    later = now + timedelta(minutes=30)
    traffic(model, version, at=later, requests=50, latency_ms=120.0)
    services.alerts_evaluate(now=later)
    assert Alert.objects.get(rule=r).state == AlertState.RESOLVED


def test_a_rule_whose_source_fails_records_why_and_the_others_still_run(owner, production):
    broken = rule(owner, production, kind="dataset_stale", threshold=30)
    # A threshold the form would refuse, written around it (an old row, the admin's raw edit): the
    # source's date arithmetic overflows.
    AlertRule.objects.filter(pk=broken.pk).update(threshold=1e12)
    works = rule(owner, production, kind="job_failed")
    Job.objects.create(kind="tests.fail", department=production, status=JobStatus.FAILED, finished_at=timezone.now())
    assert services.alerts_evaluate() == {"rules": 2, "opened": 1, "resolved": 0, "failed": 1}
    broken.refresh_from_db()
    assert broken.last_error.startswith("OverflowError") and Alert.objects.filter(rule=works).count() == 1


# --- quality_check_failed --------------------------------------------------------------------


def test_a_failed_quality_check_opens_an_alert_that_resolves_when_a_clean_version_passes(owner, member, production):
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Sensors")
    publish(member, dataset, "machine,temperature\nM1,70\n")
    datalake_services.dataset_update(
        actor=member, dataset=dataset, checks=[{"type": "not_null", "column": "temperature", "blocking": False}]
    )
    publish(member, dataset, "machine,temperature\nM1,70\nM2,\n")
    r = rule(owner, production, kind="quality_check_failed")
    services.alerts_evaluate()
    alert = Alert.objects.get(rule=r)
    assert alert.dedup_key == f"quality:{dataset.pk}" and "Sensors" in alert.message and "1 of 2 rows" in alert.message
    publish(member, dataset, "machine,temperature\nM1,70\nM2,71\n")
    services.alerts_evaluate()
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


# --- job_failed -------------------------------------------------------------------------------


def test_each_failed_job_of_the_department_in_the_window_opens_one_alert(owner, production, quality):
    now = timezone.now()
    r = rule(owner, production, kind="job_failed", window_minutes=30)
    AlertRule.objects.filter(pk=r.pk).update(created_at=now - timedelta(days=1))
    failed = Job.objects.create(kind="datalake.ingest", department=production, status=JobStatus.FAILED,
                                finished_at=now - timedelta(minutes=5), error_message="disk full")  # fmt: skip
    Job.objects.create(kind="x", department=production, status=JobStatus.FAILED, finished_at=now - timedelta(hours=2))
    Job.objects.create(kind="x", department=production, status=JobStatus.SUCCEEDED, finished_at=now)
    Job.objects.create(kind="x", department=quality, status=JobStatus.FAILED, finished_at=now)
    services.alerts_evaluate(now=now)
    alert = Alert.objects.get(rule=r)
    assert alert.dedup_key == f"job:{failed.pk}" and "datalake.ingest" in alert.message and "disk full" in alert.message
    services.alerts_evaluate(now=now + timedelta(minutes=40))  # the failure left the window
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


# --- quota_nearly_used -----------------------------------------------------------------------


def test_gpu_minutes_near_the_quota_open_an_alert(owner, production):
    production.gpu_minutes_per_month = 100
    production.save()
    now = timezone.now().replace(day=15, hour=12)  # mid-month: the 95 minutes below all count this month
    Job.objects.create(kind="train", department=production, queue="gpu", status=JobStatus.SUCCEEDED,
                       started_at=now - timedelta(minutes=100), finished_at=now - timedelta(minutes=5))  # fmt: skip
    Job.objects.create(kind="train", department=production, queue="cpu", status=JobStatus.SUCCEEDED,
                       started_at=now - timedelta(minutes=500), finished_at=now)  # fmt: skip
    r = rule(owner, production, kind="quota_nearly_used", threshold=0.9)
    services.alerts_evaluate(now=now)
    alert = Alert.objects.get(rule=r, dedup_key="quota:gpu")
    assert alert.value == pytest.approx(0.95) and "95 of its 100 GPU minutes" in alert.message


def test_storage_near_the_quota_opens_an_alert_and_a_roomier_quota_clears_it(owner, member, production):
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Sensors")
    publish(member, dataset, "machine,temperature\n" + "".join(f"M{i},{i}\n" for i in range(50)))
    used = datalake_services.department_storage_used(production)
    production.storage_bytes_quota = int(used / 0.95)
    production.save()
    r = rule(owner, production, kind="quota_nearly_used", threshold=0.9)
    services.alerts_evaluate()
    alert = Alert.objects.get(rule=r)
    assert alert.dedup_key == "quota:storage" and alert.value == pytest.approx(0.95, abs=0.01)
    production.storage_bytes_quota = used * 10
    production.save()
    services.alerts_evaluate()
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


# --- dataset_stale ---------------------------------------------------------------------------


def test_a_dataset_without_a_new_version_for_the_threshold_days_is_stale_until_one_arrives(owner, member, production):
    from datalake.models import Dataset, DatasetVersion

    fresh = datalake_services.dataset_create(actor=member, department=production, name="Fresh")
    publish(member, fresh, "a\n1\n")
    old = datalake_services.dataset_create(actor=member, department=production, name="Old")
    publish(member, old, "a\n1\n")
    ten_days_ago = timezone.now() - timedelta(days=10)
    Dataset.objects.filter(pk__in=[fresh.pk, old.pk]).update(created_at=ten_days_ago)
    DatasetVersion.objects.filter(dataset=old).update(published_at=ten_days_ago)
    r = rule(owner, production, kind="dataset_stale", threshold=7)
    services.alerts_evaluate()
    alert = Alert.objects.get(rule=r)
    assert alert.dedup_key == f"stale:{old.pk}" and alert.value == pytest.approx(10, abs=0.01) and "10 days" in alert.message
    publish(member, old, "a\n2\n")
    services.alerts_evaluate()
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED


# --- channels --------------------------------------------------------------------------------


def test_e_mail_is_queued_as_a_job_and_goes_to_the_department_s_people_once_per_alert(
    deployed, owner, member, outsider, production, django_capture_on_commit_callbacks
):
    _model, version = deployed
    drift_row(version, "x", 0.5, end=timezone.now())
    rule(owner, production, kind="drift_psi", threshold=0.25, notify_email=True, notify_in_app=False, name="Drift watch")
    with django_capture_on_commit_callbacks(execute=True):  # the job is queued once the alert is committed
        services.alerts_evaluate()
        services.alerts_evaluate()
    [job] = Job.objects.filter(kind=services.EMAIL_KIND)
    assert job.params == {"alerts": [str(Alert.objects.get().pk)]} and mail.outbox == []
    assert services.alert_emails_send(job.params["alerts"]) == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["mia-member@example.com", "oscar-owner@example.com"]
    assert mail.outbox[0].subject == "[Lepton] Drift watch" and "PSI 0.500" in mail.outbox[0].body
    assert not Notification.objects.exists()


# --- people's changes ------------------------------------------------------------------------


def test_acknowledge_and_resolve_are_audited_and_refused_in_the_wrong_state(deployed, owner, member, viewer, production):
    r = rule(owner, production, kind="job_failed")
    alert = Alert.objects.create(rule=r, department=production, kind=r.kind, dedup_key="job:1", message="a")
    with pytest.raises(Forbidden):
        services.alert_acknowledge(actor=viewer, alert=alert)
    services.alert_acknowledge(actor=member, alert=alert)
    from lepton.errors import Conflict

    with pytest.raises(Conflict):
        services.alert_acknowledge(actor=member, alert=alert)
    services.alert_resolve(actor=member, alert=alert)
    with pytest.raises(Conflict):
        services.alert_resolve(actor=member, alert=alert)
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED and alert.resolved_by == member and alert.acknowledged_by == member
    actions = list(AuditEvent.objects.filter(object_id=str(alert.pk)).order_by("at", "id").values_list("action", "actor_label"))
    assert actions == [("alert.acknowledge", "mia-member"), ("alert.resolve", "mia-member")]


def test_rules_are_made_by_maintainers_only_and_audited(owner, member, outsider, production):
    with pytest.raises(Forbidden):
        rule(member, production, kind="job_failed")
    with pytest.raises(NotFound):
        rule(outsider, production, kind="job_failed")
    r = rule(owner, production, kind="job_failed")
    services.rule_update(actor=owner, rule=r, window_minutes=120)
    events = list(AuditEvent.objects.filter(object_id=str(r.pk)).order_by("id").values_list("action", "changes"))
    assert events[0][0] == "alert_rule.create" and events[1] == ("alert_rule.update", {"window_minutes": [60, 120]})
    assert r.webhook_secret() and len(r.webhook_secret()) >= 40


def test_disabling_a_rule_resolves_its_alerts_and_stops_evaluation(owner, production):
    r = rule(owner, production, kind="job_failed")
    Job.objects.create(kind="x", department=production, status=JobStatus.FAILED, finished_at=timezone.now())
    services.alerts_evaluate()
    services.rule_update(actor=owner, rule=r, enabled=False)
    assert Alert.objects.get(rule=r).state == AlertState.RESOLVED and Alert.objects.get(rule=r).resolved_by == owner
    assert services.alerts_evaluate()["rules"] == 0 and Alert.objects.filter(rule=r).count() == 1


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"kind": "drift_psi", "threshold": 0}, "threshold", "must be above 0"),
        ({"kind": "drift_psi", "threshold": -0.2}, "threshold", "must be above 0"),
        ({"kind": "drift_psi"}, "threshold", "needs a threshold"),
        ({"kind": "drift_psi", "threshold": float("nan")}, "threshold", "Enter a number"),
        ({"kind": "error_rate", "threshold": 5}, "threshold", "between 0 and 1"),
        ({"kind": "quota_nearly_used", "threshold": 1.5}, "threshold", "at most 1"),
        ({"kind": "job_failed", "threshold": 3}, "threshold", "takes no threshold"),
        ({"kind": "p99_latency", "threshold": 100, "window_minutes": 0}, "window_minutes", "from 1 to 10080"),
        ({"kind": "nonsense"}, "kind", "Choose one of"),
        ({"kind": "job_failed", "notify_in_app": False}, "notify_in_app", "at least one channel"),
        ({"kind": "job_failed", "webhook_url": "ftp://127.0.0.1/x"}, "webhook_url", "http:// or https://"),
        ({"kind": "job_failed", "webhook_url": "https://evil.example.org/x"}, "webhook_url", "may not receive webhooks"),
        ({"kind": "job_failed", "dataset": "not-an-id"}, "dataset", "does not watch a dataset"),
        ({"kind": "dataset_stale", "threshold": 3, "dataset": "00000000-0000-0000-0000-000000000000"}, "dataset", "No dataset"),
    ],
)
def test_bad_rules_are_refused_with_the_field_and_reason_and_nothing_is_saved(owner, production, settings, values, field, words):
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", ".example.com"]
    with pytest.raises(Invalid) as refused:
        rule(owner, production, **values)
    assert words in refused.value.fields[field][0]
    assert not AlertRule.objects.exists() and not AuditEvent.objects.filter(action__startswith="alert_rule").exists()


def test_a_model_of_another_department_cannot_be_watched(owner, outsider, production, quality):
    from lepton.models import Membership

    Membership.objects.filter(user=outsider, department=quality).update(role="maintainer")
    other, _v = production_model(outsider, quality, name="Theirs")
    with pytest.raises(Invalid) as refused:
        rule(owner, production, kind="drift_psi", threshold=0.2, model=other.pk)
    assert refused.value.fields == {"model": ["No model with this id in Production."]}


def test_the_passes_are_in_the_periodic_schedule():
    paths = {path: every for path, every in settings.LEPTON_PERIODIC_TASKS}
    assert paths["monitoring.alerts.services.alerts_evaluate"] == 60
    assert paths["monitoring.alerts.services.webhooks_enqueue_due"] == 10
    assert import_string("monitoring.alerts.services.alerts_evaluate") is services.alerts_evaluate


def test_a_rule_whose_webhook_host_left_the_allow_list_can_be_disabled_not_repointed(owner, production, settings):
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["hooks.example.com"]
    r = rule(owner, production, kind="job_failed", webhook_url="https://hooks.example.com/a")
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = []
    services.rule_update(actor=owner, rule=r, enabled=False)
    r.refresh_from_db()
    assert not r.enabled
    with pytest.raises(Invalid) as refused:
        services.rule_update(actor=owner, rule=r, webhook_url="https://hooks.example.com/b")
    assert "Webhooks are turned off here" in refused.value.fields["webhook_url"][0]


def test_each_person_gets_the_alert_e_mail_in_the_language_kept_on_their_profile(
    deployed, owner, member, production, django_capture_on_commit_callbacks
):
    from lepton.services import profile_set_language

    profile_set_language(actor=member, language="zh-hans")
    _model, version = deployed
    drift_row(version, "x", 0.5, end=timezone.now())
    rule(owner, production, kind="drift_psi", threshold=0.25, notify_email=True, notify_in_app=False, name="Drift watch")
    with django_capture_on_commit_callbacks(execute=True):
        services.alerts_evaluate()
    [job] = Job.objects.filter(kind=services.EMAIL_KIND)
    assert services.alert_emails_send(job.params["alerts"]) == 2
    bodies = {m.to[0]: m.body for m in mail.outbox}
    assert "部门：Production" in bodies["mia-member@example.com"], bodies["mia-member@example.com"]
    assert "Department: Production" in bodies["oscar-owner@example.com"]
