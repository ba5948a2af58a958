"""Model-repository journey in a real Chromium: train a Keras model from the form and watch its
per-epoch curve grow on the run page without reloading; compare it with the forest trained
before; request production; a second maintainer approves it in the inbox; predict one row in
the model page's try-it form."""

import io

from datalake import services as datalake_services
from models_repo import services
from models_repo.models import ModelAlias, PromotionRequest, TrainingRun
from tests.browser.conftest import SHOTS
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)
from tests.conftest import wait_for_job
from tests.factories import MembershipFactory, UserFactory
from tests.models_repo.conftest import SPEC, inspections_csv


def _login(page, url, user):
    page.goto(f"{url}/accounts/login/?next=/models/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")


def test_train_watch_compare_promote_approve_and_try(
    live_server, browser_page, member, owner, production, celery_worker, dispatcher
):
    from playwright.sync_api import expect

    checker = UserFactory(username="max-maintainer")
    MembershipFactory(user=checker, department=production, role="maintainer")
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Inspections")
    upload = datalake_services.dataset_upload(
        actor=member, dataset=dataset, stream=io.BytesIO(inspections_csv()), filename="i.csv"
    )
    data = datalake_services.version_ingest(upload.pk)
    model = services.model_create(actor=owner, department=production, name="Quality predictor")
    first = services.training_start(actor=member, dataset_version=data, spec=SPEC, registered_model=model)
    assert wait_for_job(first.job, timeout=120).status == "succeeded"

    page = browser_page
    _login(page, live_server.url, member)
    expect(page.locator("h1")).to_have_text("Models")

    # Train a Keras MLP from the form, into the model.
    page.goto(f"{live_server.url}/models/train/?model={model.pk}&version={data.pk}")
    page.select_option("#id_task", "classification")
    page.fill("#id_target", "合格")
    page.fill("#id_features", "温度, pressure")  # a Keras MLP reads numbers
    page.select_option("#id_algorithm", "keras_mlp")
    page.fill("#id_keras", '{"epochs": 60, "units": 16, "patience": 100, "batch_size": 16}')
    page.fill("#id_seed", "7")
    page.click("#train-form button[type=submit]")
    expect(page.locator(".messages, .message").first).to_contain_text("The run is queued")
    page.evaluate("window.__stayed = true")  # gone if the page reloads
    run = TrainingRun.objects.exclude(pk=first.pk).get()
    # The per-epoch curve appears and grows while the job runs; the page follows without a reload.
    expect(page.locator("[data-plotly-figure='fig-epochs']")).to_be_visible(timeout=90_000)
    expect(page.locator("[data-run-status='succeeded']")).to_be_visible(timeout=120_000)
    assert page.evaluate("window.__stayed === true")
    run.refresh_from_db()
    assert run.status == "succeeded" and len(run.epochs) >= 2, run.error_message
    expect(page.locator("[data-plotly-figure='fig-confusion']")).to_be_visible()
    page.screenshot(path=str(SHOTS / "20-keras-run.png"), full_page=True)

    # Compare v1 (the forest) with v2 (the Keras MLP).
    page.goto(f"{live_server.url}/models/{model.pk}/")
    page.check("input[name=v][value='1']")
    page.check("input[name=v][value='2']")
    page.click("#compare-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("Compare versions")
    expect(page.locator("#compare-table")).to_contain_text("keras_mlp")
    expect(page.locator("#compare-table")).to_contain_text("random_forest")
    expect(page.locator("[data-holdout]")).to_be_visible()  # same rows or not, the page says which
    expect(page.locator("#compare-table td[data-best]").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "21-compare.png"), full_page=True)

    # Request production for v2; the gate passes (nothing in production yet), approval waits.
    page.goto(f"{live_server.url}/models/{model.pk}/")
    row = page.locator("#v2")
    row.locator("input[name=reason]").fill("better recall")
    row.locator("text=Request production").click()
    expect(page.locator(".messages, .message").first).to_contain_text("waits for a maintainer's approval")
    assert PromotionRequest.objects.get().status == "pending"

    # A second maintainer approves it from the inbox.
    page.context.clear_cookies()
    _login(page, live_server.url, checker)
    page.goto(f"{live_server.url}/models/promotions/")
    page.locator("input[name=note]").first.fill("checked the confusion matrix")
    page.locator("text=Approve").first.click()
    expect(page.locator(".messages, .message").first).to_contain_text("production now serves v2")
    assert ModelAlias.objects.get(model=model, name="production").version.number == 2

    # Try the production version on one row.
    page.goto(f"{live_server.url}/models/{model.pk}/")
    page.fill("#try-form input[name='col:温度']", "80")
    page.fill("#try-form input[name='col:pressure']", "6.5")
    page.click("#try-form button[type=submit]")
    expect(page.locator(".try-result")).to_contain_text("Prediction")
    expect(page.locator(".try-result")).to_contain_text("(v2)")
    page.screenshot(path=str(SHOTS / "22-try-it.png"), full_page=True)
