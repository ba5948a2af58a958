"""The drift panel (templates/monitoring/partials/_drift.html), the model page that loads it, and /metrics."""

from datetime import timedelta

from django.utils import timezone

from models_repo.models import ModelAlias
from monitoring import services
from tests.monitoring.conftest import inputs, log_inputs


def _panel(version):
    return f"/dashboards/models/{version.model_id}/drift/"


def test_anonymous_is_sent_to_login_and_outsider_gets_404(client, deployed, outsider):
    response = client.get(_panel(deployed))
    assert response.status_code == 302 and "/login" in response["Location"]
    client.force_login(outsider)
    assert client.get(_panel(deployed)).status_code == 404


def test_panel_shows_each_feature_with_its_status_and_the_figures(client, deployed, member, drift_settings):
    end = services.window_end_for(timezone.now())
    log_inputs(deployed, inputs(150) + inputs(150, seed=8, temperature=85.0), at=end - timedelta(minutes=10))
    services.drift_compute(deployed.pk, end)
    client.force_login(member)
    html = client.get(_panel(deployed)).content.decode()
    assert 'data-feature="温度" data-drift-status="significant"' in html
    assert 'data-feature="pressure" data-drift-status="stable"' in html
    assert 'data-plotly-figure="fig-drift-psi"' in html and 'id="fig-drift-psi"' in html
    assert 'data-plotly-figure="fig-drift-history"' in html


def test_panel_empty_state_says_how_many_predictions_are_needed(client, deployed, member, drift_settings):
    client.force_login(member)
    html = client.get(_panel(deployed)).content.decode()
    assert 'data-drift-empty="waiting"' in html and "100 sampled predictions" in html
    ModelAlias.objects.filter(model=deployed.model).delete()
    html = client.get(_panel(deployed)).content.decode()
    assert 'data-drift-empty="no_production"' in html


def test_model_page_loads_the_drift_panel(client, deployed, member):
    client.force_login(member)
    html = client.get(f"/models/{deployed.model_id}/").content.decode()
    assert f'hx-get="/dashboards/models/{deployed.model_id}/drift/"' in html


def test_metrics_export_the_latest_psi_of_production_features(client, deployed, drift_settings):
    end = services.window_end_for(timezone.now())
    log_inputs(deployed, inputs(200), at=end - timedelta(minutes=10))
    services.drift_compute(deployed.pk, end)
    text = client.get("/metrics").content.decode()
    psi = deployed.feature_drifts.get(feature="pressure").psi
    line = next(x for x in text.splitlines() if x.startswith("lepton_model_feature_drift_psi{") and 'feature="pressure"' in x)
    assert 'department="production"' in line and 'model="quality-predictor"' in line and 'version="1"' in line
    assert float(line.rsplit(" ", 1)[1]) == psi
    ends = [x for x in text.splitlines() if x.startswith("lepton_model_drift_window_end_timestamp_seconds{")]
    assert len(ends) == 1 and 'model="quality-predictor"' in ends[0] and float(ends[0].rsplit(" ", 1)[1]) == end.timestamp()


def test_admin_shows_drift_read_only(client, deployed, staff, drift_settings):
    from django.urls import reverse

    end = services.window_end_for(timezone.now())
    log_inputs(deployed, inputs(120), at=end - timedelta(minutes=10))
    services.drift_compute(deployed.pk, end)
    client.force_login(staff)
    for name in ("driftreference", "featuredrift"):
        changelist = client.get(reverse(f"admin:monitoring_{name}_changelist"))
        assert changelist.status_code == 200
        assert client.get(reverse(f"admin:monitoring_{name}_add")).status_code == 403
    row = deployed.feature_drifts.get(feature="温度")
    page = client.get(reverse("admin:monitoring_featuredrift_change", args=[row.pk]))
    assert page.status_code == 200 and "温度" in page.content.decode() and b'name="psi"' not in page.content
