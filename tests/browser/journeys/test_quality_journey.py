"""Journeys 1 and 6: a quality engineer's day, in English and again in Simplified Chinese.

The engineer uploads a GBK-encoded CSV with Chinese headers and missing temperatures, watches the
ingest progress, reads the profile, fills the missing values with a recipe, trains two models on
the cleaned data, compares them and requests production; the quality lead approves; the engineer
predicts in the try-it form and through the API with a token made on the profile page. In the
Chinese run the language is switched in the UI (the login page's switcher) and the steps check
Chinese labels.
"""

import numpy as np
import pytest

from datalake.models import Dataset, DatasetVersion
from models_repo.models import ModelAlias, PromotionRequest, RegisteredModel, TrainingRun
from tests.browser.journeys.conftest import ZH, api_post, login, shot
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)

ROWS = 160


def inspections_gbk(rows: int = ROWS, seed: int = 11) -> bytes:
    """Parts fail (合格 = 否, read as false) when 温度 + 3 × 压力 ≥ 86; every 8th 温度 is missing. GBK-encoded."""
    rng = np.random.default_rng(seed)
    lines = ["温度,压力,产线,合格"]
    for k in range(rows):
        temp, pressure = rng.normal(70, 5), rng.normal(5, 1)
        ok = "是" if temp + 3 * pressure < 86 else "否"
        shown = "" if k % 8 == 3 else f"{temp:.2f}"
        lines.append(f"{shown},{pressure:.3f},{rng.choice(['一线', '二线'])},{ok}")
    return ("\n".join(lines) + "\n").encode("gbk")


def _text(language: str, english: str, key: str) -> str:
    return ZH[key] if language else english


def _train(page, base_url: str, language: str, model, version, algorithm: str, params: str) -> TrainingRun:
    from playwright.sync_api import expect

    page.goto(f"{base_url}/models/train/?model={model.pk}&version={version.pk}")
    page.select_option("#id_task", "classification")
    page.fill("#id_target", "合格")
    page.fill("#id_features", "温度, 压力, 产线")
    page.select_option("#id_algorithm", algorithm)
    page.fill("#id_params", params)
    page.fill("#id_seed", "7")
    before = set(TrainingRun.objects.values_list("pk", flat=True))
    page.click("#train-form button[type=submit]")
    expect(page.locator("#run-live")).to_be_visible()
    run = TrainingRun.objects.exclude(pk__in=before).get()
    # The run page follows the job (htmx) until the run has its metrics.
    expect(page.locator("#run-live")).to_have_attribute("data-run-status", "succeeded", timeout=90_000)
    expect(page.locator("#status-title .badge")).to_have_text(_text(language, "Succeeded", "succeeded"))
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    return run


@pytest.mark.parametrize("language", ["", "zh-hans"], ids=["english", "chinese"])
def test_quality_engineer_from_gbk_upload_to_api_prediction(
    language, live_server, browser_page, engineer, lead, quality, celery_worker, dispatcher, tmp_path
):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    tag = "j6" if language else "j1"

    # The lead registers the model the engineer will train into.
    login(page, base, lead, "/models/", language)
    expect(page.locator("h1")).to_have_text(_text(language, "Models", "models"))
    page.click("details:has(#id_name) summary")
    page.fill("#id_name", "Part quality")
    page.click("form:has(#id_name) button[type=submit]")
    expect(page.locator("h1")).to_have_text("Part quality")
    model = RegisteredModel.objects.get(department=quality)

    # Upload: a GBK file with Chinese headers; the bytes go up with a progress bar, the ingest job follows.
    login(page, base, engineer, "/data/", language)
    expect(page.locator("h1")).to_have_text(_text(language, "Data", "data"))
    page.fill("#id_name", "质检记录 Inspections")
    page.click("form:has(#id_name) button[type=submit]")
    expect(page.locator("h1")).to_have_text("质检记录 Inspections")
    upload = tmp_path / "inspections_gbk.csv"
    upload.write_bytes(inspections_gbk())
    page.set_input_files("#id_file", str(upload))
    page.click("form[data-upload-progress] button[type=submit]")
    expect(page.locator(".messages")).to_contain_text(_text(language, "it is being ingested", "ingesting"))
    expect(page.locator("#versions")).to_contain_text(_text(language, "Published", "published"), timeout=60_000)
    shot(page, f"{tag}-01-ingested")
    raw = DatasetVersion.objects.get(dataset__department=quality)
    assert raw.status == "published" and raw.ingest_report["encoding"] in ("gb18030", "gbk"), raw.ingest_report

    # The profile: Chinese column names, and 温度's 20 missing values.
    page.reload()
    schema = page.locator("section[aria-labelledby=schema-title]")
    expect(schema).to_contain_text(f"({ROWS} " if not language else f"{ROWS} 行")
    for name in ("温度", "压力", "产线", "合格"):
        expect(schema).to_contain_text(name)
    expect(schema.locator("tr", has_text="温度").locator("td").nth(2)).to_have_text(str(ROWS // 8))
    expect(page.locator("[data-plotly-figure] svg.main-svg").first).to_be_visible()
    shot(page, f"{tag}-02-profile")

    # A recipe fills the missing temperatures with the median; run it into a cleaned dataset.
    page.click("#recipe-builder-section summary")
    page.select_option("[data-recipe-kind]", "fill_missing")
    page.click("[data-recipe-add]")
    step = page.locator(".recipe-step[data-step='0']")
    expect(step).to_contain_text(_text(language, "Fill missing values", "fill_missing"))
    step.locator("input[data-role=column]").fill("温度")
    step.locator("select").first.select_option("median")
    page.click("[data-recipe-preview]")
    expect(page.locator("#recipe-preview table[data-recipe-sample]")).to_contain_text("一线", timeout=30_000)
    page.fill("#recipe-form input[name=name]", "cleaned")
    shot(page, f"{tag}-03-recipe")
    page.click("#recipe-form button[type=submit]")
    page.locator("[data-recipe] form button[type=submit]").first.click()
    expect(page.locator("h1")).to_have_text("质检记录 Inspections (cleaned)")
    expect(page.locator("#versions")).to_contain_text(_text(language, "Published", "published"), timeout=60_000)
    page.reload()
    schema = page.locator("section[aria-labelledby=schema-title]")
    expect(schema.locator("tr", has_text="温度").locator("td").nth(2)).to_have_text("0")
    cleaned = DatasetVersion.objects.get(dataset=Dataset.objects.get(department=quality, name__endswith="(cleaned)"))

    # Two models on the cleaned data, each followed live on its run page.
    forest = _train(page, base, language, model, cleaned, "random_forest", '{"n_estimators": 30}')
    expect(page.locator("[data-plotly-figure='fig-confusion']")).to_be_visible()
    shot(page, f"{tag}-04-run")
    logistic = _train(page, base, language, model, cleaned, "logistic_regression", "{}")
    assert {forest.algorithm, logistic.algorithm} == {"random_forest", "logistic_regression"}

    # Compare v1 and v2, then ask for v2 in production.
    page.goto(f"{base}/models/{model.pk}/")
    expect(page.locator("#versions-title")).to_have_text(_text(language, "Versions", "versions"))
    page.check("input[name=v][value='1']")
    page.check("input[name=v][value='2']")
    page.click("#compare-form button[type=submit]")
    expect(page.locator("h1")).to_have_text(_text(language, "Compare versions", "compare_versions"))
    expect(page.locator("#compare-table")).to_contain_text("random_forest")
    expect(page.locator("#compare-table")).to_contain_text("logistic_regression")
    expect(page.locator("[data-holdout='same']")).to_be_visible()  # same data version, same seed: same rows
    shot(page, f"{tag}-05-compare")
    page.goto(f"{base}/models/{model.pk}/")
    row = page.locator("#v2")
    row.locator("input[name=reason]").fill("较简单，召回率相近" if language else "simpler, similar recall")
    row.locator("button", has_text=_text(language, "Request production", "request_production")).click()
    expect(page.locator("[data-request-status='pending']")).to_be_visible()
    assert PromotionRequest.objects.get().status == "pending"

    # The lead approves in the promotion inbox.
    login(page, base, lead, "/models/promotions/", language)
    page.locator("input[name=note]").first.fill("ok")
    page.locator("button", has_text=_text(language, "Approve", "approve")).first.click()
    expect(page.locator(".messages")).to_contain_text(_text(language, "Approved", "approved"))
    expect(page.locator(".messages")).to_contain_text("v2")
    shot(page, f"{tag}-06-approved")
    assert ModelAlias.objects.get(model=model, name="production").version.number == 2

    # The engineer tries production on one row, then makes a token and predicts through the API.
    login(page, base, engineer, f"/models/{model.pk}/", language)
    page.fill("#try-form input[name='col:温度']", "82")
    page.fill("#try-form input[name='col:压力']", "6.5")
    page.fill("#try-form input[name='col:产线']", "一线")
    page.click("#try-form button[type=submit]")
    result = page.locator(".try-result")
    expect(result).to_contain_text(_text(language, "Prediction", "prediction"))
    expect(result).to_contain_text("(v2)")
    # 82 + 3 × 6.5 = 101.5, far past 86: not 合格 (the ingest read the 是/否 column as a boolean).
    expect(result.locator("strong")).to_have_text("False")
    shot(page, f"{tag}-07-try-it")

    page.goto(f"{base}/profile/")
    page.fill("#id_name", "MES line 1")
    page.check("input[name=scopes][value=predict]")
    page.click("#token-create-form button[type=submit]")
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("lep_")
    url = f"{base}/api/v1/models/quality/{model.slug}/predict"
    rows = [{"温度": 82, "压力": 6.5, "产线": "一线"}, {"温度": 62, "压力": 4.0, "产线": "二线"}]
    status, body = api_post(url, {"inputs": rows}, secret)
    assert status == 200, body
    assert body["version"] == 2 and body["predictions"] == [False, True], body
    status, body = api_post(url, {"inputs": [{"温度": "hot", "压力": 6.5, "产线": "一线"}]}, secret)
    assert status == 400 and "温度" in str(body), body
