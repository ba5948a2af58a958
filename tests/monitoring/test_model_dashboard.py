"""The model dashboard: selectors.model_dashboard on rollups plus raw logs, the page (/dashboards/models/<id>/)
and the API (/api/v1/models/<id>/dashboard/): who may see them, bad periods, the empty state, the figures."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from models_repo.models import ModelAlias, ModelVersion, PredictionLog
from monitoring import selectors
from monitoring.models import FeatureDrift, PredictionFeedback, PredictionRollup, RollupState
from tests.monitoring.alerts import production_model


def api(user=None):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def served(owner, production):
    """Quality predictor: v1 in production, yesterday's hours rolled up, the last minutes only logged raw."""
    model, v1 = production_model(owner, production)
    v2 = ModelVersion.objects.create(model=model, number=2, flavor="sklearn", task="classification", artifact_sha256="b" * 64)
    now = timezone.now().astimezone(UTC)
    done = now.replace(second=0, microsecond=0) - timedelta(minutes=3)
    RollupState.objects.create(grain="minute", done_until=done)
    RollupState.objects.create(grain="hour", done_until=done.replace(minute=0))
    RollupState.objects.create(grain="day", done_until=done.replace(hour=0, minute=0))
    hour = done.replace(minute=0) - timedelta(hours=1)
    PredictionRollup.objects.create(
        grain="hour", bucket=hour, model=model, version=v1, requests=100, rows=300, errors=10, errors_5xx=2,
        latency_ms_sum=3000.0, le_10=40, le_25=50, le_250=10, outputs={"kind": "classes", "counts": {"yes": 200, "no": 100}},
    )  # fmt: skip
    PredictionRollup.objects.create(
        grain="hour", bucket=hour, model=model, version=v2, requests=20, rows=20, le_5=20,
        outputs={"kind": "classes", "counts": {"yes": 20}},
    )  # fmt: skip
    PredictionLog.objects.bulk_create(
        [
            PredictionLog(model=model, version=v1, created_at=done + timedelta(seconds=10 + k), rows=1, latency_ms=7.0,
                          outputs=["no"])
            for k in range(5)
        ]
        + [PredictionLog(model=model, version=v1, created_at=done + timedelta(seconds=30), rows=0, status_code=400,
                         error="invalid_input")]
    )  # fmt: skip
    return model, v1, v2


def test_the_dashboard_adds_rollups_and_the_raw_tail_per_bucket_and_version(served, member):
    model, _v1, _v2 = served
    now = timezone.now()
    data = selectors.model_dashboard(member, model.pk, now - timedelta(hours=30), now)
    assert data["step"] == "hour" and len(data["x"]) == len(data["requests"]) == len(data["p99"])
    assert data["totals"]["requests"] == 126 and data["totals"]["errors"] == 11 and data["totals"]["rows"] == 325
    assert sum(data["requests"]) == 126 and sum(data["errors"]) == 11
    assert data["versions"]["v1"][-2:] != [0, 0] and sum(data["versions"]["v2"]) == 20 and sum(data["versions"]["v1"]) == 106
    assert data["outputs"] == {"kind": "classes", "counts": {"yes": 220, "no": 105}}
    rolled = data["requests"].index(120)  # the rolled-up hour: both versions
    assert (
        data["error_rate"][rolled] == pytest.approx(10 / 120, abs=1e-4) and data["p50"][rolled] == 10.0
    )  # 20 + 40 of 120 at or under 10 ms
    assert data["p99"][rolled] > 100  # ten requests between 100 and 250 ms
    assert data["performance"]["kind"] is None and data["drift"]["features"] == []


def test_the_dashboard_matches_the_raw_aggregate_without_any_rollup(owner, member, production):
    model, version = production_model(owner, production)
    ModelVersion.objects.filter(pk=version.pk).update(task="regression")
    now = timezone.now()
    PredictionLog.objects.bulk_create(
        PredictionLog(model=model, version=version, created_at=now - timedelta(hours=k % 20, minutes=k % 50), rows=2,
                      latency_ms=float(k), outputs=[k % 3, 1.0])
        for k in range(300)
    )  # fmt: skip
    data = selectors.model_dashboard(member, model.pk, now - timedelta(days=1), now)
    assert data["totals"]["requests"] == 300 and data["totals"]["rows"] == 600
    assert data["outputs"]["kind"] == "numbers" and data["outputs"]["counts"] == {"0": 100, "1": 100 + 300, "2": 100}
    assert data["totals"]["p99_ms"] == pytest.approx(
        selectors.model_traffic(model.pk, now - timedelta(days=2), now + timedelta(seconds=1))["p99_ms"]
    )


def test_real_performance_comes_from_the_feedback_by_prediction_time(served, member):
    model, v1, _v2 = served
    now = timezone.now()
    for k, (rows, correct) in enumerate(((4, 3), (6, 6))):
        PredictionFeedback.objects.create(
            prediction_id=f"00000000-0000-0000-0000-00000000000{k}", model=model, version=v1,
            predicted_at=now - timedelta(minutes=5 + k), rows=rows, correct=correct, actual=[True] * rows,
        )  # fmt: skip
    perf = selectors.model_dashboard(member, model.pk, now - timedelta(hours=3), now)["performance"]
    assert perf["kind"] == "classification" and perf["rows_total"] == 10 and perf["accuracy_total"] == 0.9
    assert perf["mae"] == [None] * len(perf["mae"]) and 0.9 in perf["accuracy"]


def test_regression_performance_gives_mae_and_rmse(owner, member, production):
    model, version = production_model(owner, production, name="Yield")
    now = timezone.now()
    PredictionFeedback.objects.create(
        prediction_id="00000000-0000-0000-0000-000000000009", model=model, version=version, predicted_at=now,
        rows=4, abs_error_sum=8.0, squared_error_sum=36.0, actual=[1, 2, 3, 4],
    )  # fmt: skip
    perf = selectors.model_dashboard(member, model.pk, now - timedelta(hours=1), now)["performance"]
    assert (perf["kind"], perf["mae_total"], perf["rmse_total"]) == ("regression", 2.0, 3.0)


def test_the_dashboard_reads_a_fixed_number_of_queries_whatever_the_period(served, member):
    model, _v1, _v2 = served
    now = timezone.now()
    selectors.model_dashboard(member, model.pk, now - timedelta(days=2), now)  # the person's roles are cached after
    counts = []
    for days in (1, 30):
        with CaptureQueriesContext(connection) as queries:
            selectors.model_dashboard(member, model.pk, now - timedelta(days=days), now)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_long_period_reads_day_rollups_not_minutes(owner, member, production):
    model, version = production_model(owner, production)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for grain in ("minute", "hour", "day"):
        RollupState.objects.create(grain=grain, done_until=today)
    for k in range(1, 29):
        PredictionRollup.objects.create(grain="day", bucket=today - timedelta(days=k), model=model, version=version,
                                        requests=1000, le_50=1000)  # fmt: skip
    # A minute of a rolled-up day: the day row already counts it, so it is not read again.
    PredictionRollup.objects.create(grain="minute", bucket=today - timedelta(days=2), model=model, version=version,
                                    requests=7, le_50=7)  # fmt: skip
    data = selectors.model_dashboard(member, model.pk, today - timedelta(days=29), timezone.now())
    assert data["step"] == "day" and data["totals"]["requests"] == 28_000


# --- the page ----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_log_in(client, served):
    model, _v1, _v2 = served
    response = client.get(f"/dashboards/models/{model.pk}/")
    assert response.status_code == 302 and "/login" in response["Location"]


def test_an_outsider_gets_404_and_a_share_opens_the_page(client, served, outsider, owner, quality):
    from lepton.services import share_grant

    model, _v1, _v2 = served
    client.force_login(outsider)
    assert client.get(f"/dashboards/models/{model.pk}/").status_code == 404
    assert client.get(f"/dashboards/models/{model.pk}/?start=2026-12-05&end=2026-12-01").status_code == 404
    share_grant(actor=owner, obj=model, department=quality, level="view")
    assert client.get(f"/dashboards/models/{model.pk}/").status_code == 200


def test_the_page_draws_the_charts_and_polls_for_updates(client, served, viewer):
    model, _v1, _v2 = served
    client.force_login(viewer)
    response = client.get(f"/dashboards/models/{model.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    figures = {f["id"]: f["figure"] for f in response.context["figures"]}
    assert {"model-requests", "model-latency", "model-errors", "model-outputs", "model-versions"} <= set(figures)
    assert sum(figures["model-requests"]["data"][0]["y"]) == 126
    assert [t["name"] for t in figures["model-latency"]["data"]] == ["p50", "p95", "p99"]
    assert figures["model-outputs"]["data"][0]["x"] == ["yes", "no"]
    assert 'hx-trigger="every 5s"' in html and 'data-plotly-figure="model-requests"' in html
    assert 'data-kpi="requests">126<' in html and "data-drift-panel" in html
    assert "No ground truth yet" in html and "/api/v1/models/production/quality-predictor/feedback" in html


def test_the_model_page_and_the_department_dashboard_link_to_it(client, served, member):
    model, _v1, _v2 = served
    client.force_login(member)
    assert f'href="/dashboards/models/{model.pk}/"' in client.get(f"/models/{model.pk}/").content.decode()
    assert f"/dashboards/models/{model.pk}/?start=" in client.get("/dashboards/").content.decode()


def test_a_model_without_predictions_says_how_to_send_some(client, owner, member, production):
    model, _version = production_model(owner, production, name="Fresh")
    client.force_login(member)
    response = client.get(f"/dashboards/models/{model.pk}/")
    html = response.content.decode()
    assert response.status_code == 200 and 'data-empty="predictions"' in html
    assert "Call POST /api/v1/models/production/fresh/predict" in html
    assert response.context["figures"] and all(f["id"] != "model-outputs" for f in response.context["figures"])


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("start=2026-12-05&end=2026-12-01", "end", "The end comes before the start"),
        ("start=2020-01-01&end=2026-12-01", "start", "at most 366 days"),
        ("end=soon", "end", "Enter a valid date"),
    ],
)
def test_a_period_that_cannot_be_shown_is_a_form_error(client, served, member, query, field, message):
    model, _v1, _v2 = served
    client.force_login(member)
    response = client.get(f"/dashboards/models/{model.pk}/?{query}")
    assert response.status_code == 400 and message in str(response.context["form"].errors[field])
    assert "data" not in response.context and message in response.content.decode()


def test_the_page_shows_the_latest_drift_of_the_production_version(client, served, member):
    _model, v1, _v2 = served
    end = timezone.now()
    FeatureDrift.objects.create(version=v1, feature="温度", window_start=end - timedelta(hours=24), window_end=end,
                                kind="numeric", psi=0.4, sample_size=300, status="significant")  # fmt: skip
    client.force_login(member)
    response = client.get(f"/dashboards/models/{v1.model_id}/")
    assert 'data-feature="温度"' in response.content.decode()
    assert response.context["data"]["drift"]["features"][0]["psi"] == 0.4


# --- the API -------------------------------------------------------------------------------------


def test_api_anonymous_gets_401(served):
    model, _v1, _v2 = served
    response = api().get(f"/api/v1/models/{model.pk}/dashboard/")
    assert response.status_code == 401 and response.json()["error"] == "not_authenticated"


def test_api_outsider_gets_404(served, outsider):
    model, _v1, _v2 = served
    response = api(outsider).get(f"/api/v1/models/{model.pk}/dashboard/?start=2026-12-05&end=2026-12-01")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "query, field, message",
    [
        ("start=2026-12-05&end=2026-12-01", "end", "The end comes before the start"),
        ("start=2020-01-01&end=2026-12-01", "start", "at most 366 days"),
        ("start=monday", "start", "Enter a valid date"),
    ],
)
def test_api_a_bad_period_is_400_with_the_field_and_the_reason(served, member, query, field, message):
    model, _v1, _v2 = served
    response = api(member).get(f"/api/v1/models/{model.pk}/dashboard/?{query}")
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    assert message in response.json()["fields"][field][0] and message in response.json()["detail"]


def test_api_member_reads_the_series_totals_and_versions(served, member):
    model, _v1, _v2 = served
    today = timezone.localdate()
    response = api(member).get(f"/api/v1/models/{model.pk}/dashboard/?start={today - timedelta(days=1)}&end={today}")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["model"] == str(model.pk) and body["step"] == "hour"
    assert body["totals"]["requests"] == 126 and set(body["versions"]) == {"v1", "v2"}
    assert body["outputs"]["counts"] == {"yes": 220, "no": 105} and body["drift"]["version"] == 1
    assert len(body["x"]) == len(body["p95"]) >= 25  # from yesterday's midnight to this hour


def test_the_dashboard_endpoint_is_in_the_schema(member):
    response = api(member).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert "/api/v1/models/{id}/dashboard/" in response.json()["paths"]


def test_an_archived_alias_move_keeps_history_per_version(served, member, owner):
    model, _v1, v2 = served
    ModelAlias.objects.filter(model=model, name="production").update(version=v2)
    now = timezone.now()
    data = selectors.model_dashboard(member, model.pk, now - timedelta(hours=30), now)
    assert data["drift"]["version"] == 2 and set(data["versions"]) == {"v1", "v2"}


def test_the_dashboard_reads_the_same_before_and_after_roll_up(owner, member, production):
    """Rollups change how the dashboard reads, never what it shows."""
    import random

    from monitoring import rollups

    model, version = production_model(owner, production)
    rng = random.Random(3)
    now = timezone.now()
    PredictionLog.objects.bulk_create(
        PredictionLog(
            model=model, version=version, created_at=now - timedelta(minutes=rng.randint(0, 40 * 60)),
            latency_ms=rng.expovariate(1 / 60), status_code=rng.choice([200] * 9 + [503]),
            rows=2, outputs=[rng.choice(["ok", "scratch"]), "ok"], source=rng.choice(["api", "api", "batch"]),
        )
        for _ in range(2000)
    )  # fmt: skip
    PredictionLog.objects.filter(status_code=503).update(rows=0, outputs=[])
    for days in (1, 3):
        before = selectors.model_dashboard(member, model.pk, now - timedelta(days=days), now)
        while not rollups.roll_up(now=now)["caught_up"]:
            pass
        assert RollupState.objects.get(grain="hour").done_until > now - timedelta(hours=2)
        after = selectors.model_dashboard(member, model.pk, now - timedelta(days=days), now)
        for key in ("x", "requests", "errors", "error_rate", "p50", "p95", "p99", "versions", "outputs", "totals"):
            if key == "totals":  # the latency sum is added in another order: its mean may differ in the last digits
                assert after[key] == {**before[key], "mean_ms": pytest.approx(before[key]["mean_ms"], rel=1e-9)}
            else:
                assert after[key] == before[key], key
        assert before["totals"]["requests"] > 500
        RollupState.objects.all().delete()
        PredictionRollup.objects.all().delete()
