"""Data-lake journey in a real Chromium: create a dataset, upload a GBK CSV with Chinese headers
(byte progress bar), watch the ingest job finish without reloading, see the columns and profile;
then build a recipe in the builder, preview it on a sample, save and run it, and see the lineage graph."""

from datalake.models import DatasetVersion, Recipe
from tests.browser.conftest import SHOTS
from tests.browser.test_smoke import pytestmark  # noqa: F401  (the browser marks)

GBK_CSV = (
    "日期,机器,温度,结果\n"
    + "".join(f"2024/01/{d:02d},M{d % 3},{60 + d * 0.5},{'合格' if d % 4 else '不合格'}\n" for d in range(1, 29))
).encode("gb18030")


def test_member_uploads_a_gbk_csv_and_sees_its_profile(
    live_server, browser_page, member, production, celery_worker, dispatcher, tmp_path
):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/data/")
    page.fill("input[name=username]", member.username)
    page.fill("input[name=password]", "password")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Data")

    page.fill("#id_name", "Inspection records")
    page.click("text=Create dataset")
    expect(page.locator("h1")).to_have_text("Inspection records")

    upload = tmp_path / "inspections_gbk.csv"
    upload.write_bytes(GBK_CSV)
    page.set_input_files("#id_file", str(upload))
    page.click("form[data-upload-progress] button[type=submit]")
    # The XHR upload reports its bytes, then the page comes back with the pending version polling.
    expect(page.locator(".messages, .message").first).to_contain_text("being ingested", timeout=15_000)
    expect(page.locator("#versions")).to_contain_text("Published", timeout=30_000)
    page.reload()
    expect(page.locator("text=Columns of v1 (28 rows)")).to_be_visible()
    for name in ("日期", "机器", "温度", "结果"):
        expect(page.locator("table").nth(1)).to_contain_text(name)
    expect(page.locator("[data-plotly-figure]").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "10-dataset-profile.png"), full_page=True)
    version = DatasetVersion.objects.get()
    assert version.status == "published" and version.ingest_report["encoding"] == "gb18030"

    # A recipe built with the builder (no JSON typed): drop duplicates, then fill missing 温度 with the median.
    page.click("#recipe-builder-section summary")
    page.select_option("[data-recipe-kind]", "drop_duplicates")
    page.click("[data-recipe-add]")
    page.select_option("[data-recipe-kind]", "fill_missing")
    page.click("[data-recipe-add]")
    fill = page.locator(".recipe-step[data-step='1']")
    expect(fill).to_contain_text("Fill missing values")
    fill.locator("input[data-role=column]").fill("温度")
    fill.locator("select").first.select_option("median")
    page.click("[data-recipe-preview]")
    expect(page.locator("#recipe-preview")).to_contain_text("The sample gives 28 rows.")
    expect(page.locator("#recipe-preview table[data-recipe-sample]")).to_contain_text("合格")
    page.fill("#recipe-form input[name=name]", "cleaned")
    page.screenshot(path=str(SHOTS / "11-recipe-builder.png"), full_page=True)
    page.click("#recipe-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("saved")
    recipe = Recipe.objects.get()
    assert recipe.steps == [{"op": "drop_duplicates", "subset": None}, {"op": "fill_missing", "columns": {"温度": "median"}}]
    expect(page.locator(f"[data-recipe='{recipe.pk}']")).to_contain_text("Fill missing: 温度 → median")

    page.click(f"[data-recipe='{recipe.pk}'] button:has-text('Run on the latest version')")
    expect(page.locator("h1")).to_have_text("Inspection records (cleaned)")
    expect(page.locator("#versions")).to_contain_text("Published", timeout=30_000)
    page.reload()
    expect(page.locator("#lineage-graph svg.main-svg").first).to_be_visible()
    expect(page.locator("#lineage-graph")).to_contain_text("production.inspection-records v1")
    page.screenshot(path=str(SHOTS / "12-lineage-graph.png"), full_page=True)
