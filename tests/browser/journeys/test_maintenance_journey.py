"""Journey 2: a maintenance engineer trains an LSTM fault predictor on sensor windows from the
training form and watches its learning curve grow on the run page while it trains (no reload)."""

import io

from datalake import services as datalake_services
from models_repo import services
from models_repo.models import ModelVersion, TrainingRun
from tests.browser.journeys.conftest import login, shot
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)
from tests.factories import DepartmentFactory, MembershipFactory, UserFactory
from tests.models_repo.test_training import _sensor_csv  # presses, a reading a minute, vibration high before failures

EPOCHS = 30


def test_maintenance_engineer_trains_an_lstm_and_watches_the_live_curve(live_server, browser_page, celery_worker, dispatcher):
    from playwright.sync_api import expect

    maintenance = DepartmentFactory(slug="maintenance", name="Maintenance")
    engineer, lead = UserFactory(username="ma-engineer"), UserFactory(username="ma-lead")
    MembershipFactory(user=engineer, department=maintenance, role="member")
    MembershipFactory(user=lead, department=maintenance, role="maintainer")
    dataset = datalake_services.dataset_create(actor=engineer, department=maintenance, name="Press sensors")
    upload = datalake_services.dataset_upload(actor=engineer, dataset=dataset, stream=io.BytesIO(_sensor_csv()), filename="s.csv")
    sensors = datalake_services.version_ingest(upload.pk)
    model = services.model_create(actor=lead, department=maintenance, name="Press fault")

    page, base = browser_page, live_server.url
    login(page, base, engineer, "/models/")
    page.goto(f"{base}/models/train/?model={model.pk}&version={sensors.pk}")
    page.select_option("#id_task", "sequence_classification")
    page.fill("#id_target", "failure")
    page.fill("#id_features", "vibration, temperature")
    page.fill("#id_time_column", "ts")
    page.fill("#id_group_column", "machine")
    page.select_option("#id_algorithm", "keras_lstm")
    # Tiny on purpose: windows of 8 readings, 16 units; no early stop, so every epoch is drawn.
    keras = f'{{"window": 8, "epochs": {EPOCHS}, "units": 16, "batch_size": 32, "learning_rate": 0.01, "patience": {EPOCHS}}}'
    page.fill("#id_keras", keras)
    page.fill("#id_seed", "1")
    shot(page, "j2-01-train-form")
    page.click("#train-form button[type=submit]")
    expect(page.locator("#run-live")).to_be_visible()
    page.evaluate("window.__stayed = true")  # gone if the page reloads

    # The curve is on the page while the run is still running, and it grows from one refresh to the next.
    live_curve = page.locator("#run-live[data-run-status='running'] [data-plotly-figure='fig-epochs'] svg.main-svg")
    expect(live_curve.first).to_be_visible(timeout=90_000)
    # Epochs drawn so far (0 for the moment a refresh has put a new figure in and Plotly has not drawn it yet).
    points = (
        "() => { const f = document.querySelector(\"[data-plotly-figure='fig-epochs']\");"
        " return f && f.data ? f.data[0].x.length : 0; }"
    )
    first = page.evaluate(points)
    page.wait_for_function(f"() => ({points})() > {first}", timeout=60_000)
    shot(page, "j2-02-live-curve")  # a few epochs drawn (more to come, unless it has just finished)
    expect(page.locator("#run-live")).to_have_attribute("data-run-status", "succeeded", timeout=120_000)
    assert page.evaluate("window.__stayed === true"), "the run page reloaded instead of updating in place"
    expect(page.locator("[data-plotly-figure='fig-epochs'] svg.main-svg").first).to_be_visible()
    assert page.evaluate(points) == EPOCHS
    expect(page.locator("#run-cancel button")).to_have_count(0, timeout=60_000)  # nothing left to cancel
    shot(page, "j2-03-lstm-done")

    run = TrainingRun.objects.get()
    assert run.status == "succeeded" and run.flavor == "keras" and len(run.epochs) == EPOCHS, run.error_message
    assert run.metrics["accuracy"] > 0.6, run.metrics
    assert ModelVersion.objects.get(run=run).model == model
