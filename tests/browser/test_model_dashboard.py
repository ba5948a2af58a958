"""The model dashboard in a real Chromium: charts drawn from rolled-up and fresh prediction logs, and the
request count moving on its own (htmx polling) while predictions arrive through the API."""

import json
import urllib.request
from datetime import timedelta

from django.utils import timezone

from lepton.services import token_create
from models_repo.api.predict import prediction_logs
from models_repo.models import ModelVersion, PredictionLog
from monitoring import rollups
from tests.browser.conftest import SHOTS
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)
from tests.models_repo.conftest import checker, inspections, model_in_production  # noqa: F401  (fixtures)

ROWS = [{"温度": 95.0, "pressure": 5.0, "line": "L1"}, {"温度": 60.0, "pressure": 4.0, "line": "L2"}]


def _predict(url: str, secret: str) -> dict:
    request = urllib.request.Request(
        f"{url}/api/v1/models/production/quality-predictor/predict",
        data=json.dumps({"inputs": ROWS}).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_the_model_dashboard_draws_its_charts_and_follows_new_predictions(
    live_server,
    browser_page,
    owner,
    member,
    checker,  # noqa: F811 - the fixture
    inspections,  # noqa: F811 - the fixture
    production,
    settings,
):
    from playwright.sync_api import expect

    model = model_in_production(owner=owner, member=member, checker=checker, dataset_version=inspections, department=production)
    version = ModelVersion.objects.get(model=model, number=1)
    # Yesterday's traffic, rolled up as the periodic job does; then three live requests (the raw tail).
    now = timezone.now()
    PredictionLog.objects.bulk_create(
        PredictionLog(model=model, version=version, created_at=now - timedelta(hours=5, minutes=k), rows=2,
                      latency_ms=10.0 + k, outputs=[True, False], status_code=200 if k % 10 else 503)
        for k in range(40)
    )  # fmt: skip
    while not rollups.roll_up(now=now)["caught_up"]:
        pass
    settings.LEPTON_PREDICTION_LOG_FLUSH_SECONDS = 0.5
    prediction_logs.background = True  # the live server's requests are written by the flush thread, as in production
    try:
        _token, secret = token_create(actor=member, name="line-3", scopes=["predict"])
        for _ in range(3):
            _predict(live_server.url, secret)
        page = browser_page
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server.url}/accounts/login/?next=/dashboards/models/{model.pk}/")
        page.fill("input[name=username]", member.username)
        page.fill("input[name=password]", "password")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_contain_text("Quality predictor")
        kpi = page.locator("[data-kpi='requests']")
        expect(kpi).to_have_text("43", timeout=15_000)  # 40 rolled up + 3 fresh (the page polls until they are written)
        for figure in ("model-requests", "model-latency", "model-errors", "model-outputs"):
            expect(page.locator(f"[data-plotly-figure='{figure}'] .main-svg").first).to_be_visible()
        bars = page.evaluate(
            "() => document.querySelector(\"[data-plotly-figure='model-requests']\").data[0].y.reduce((a, b) => a + b, 0)"
        )
        assert bars == 43
        page.screenshot(path=str(SHOTS / "70-model-dashboard.png"), full_page=True)

        page.evaluate("window.__stayed = true")  # gone if the page reloads
        for _ in range(2):
            _predict(live_server.url, secret)
        expect(kpi).to_have_text("45", timeout=20_000)
        assert page.evaluate("window.__stayed === true")
        expect(page.locator("[data-kpi='error-rate']")).to_contain_text("%")
        page.screenshot(path=str(SHOTS / "71-model-dashboard-updated.png"), full_page=True)
        assert not errors, errors
    finally:
        prediction_logs.background = False
        prediction_logs.flush()
