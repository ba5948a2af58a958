"""The recipe builder's views: save (steps JSON + joins), preview on a sample, errors naming the step."""

import io
import json

import pytest
from django.test import Client

from datalake import services
from datalake.models import Dataset, Recipe
from tests.datalake.test_recipe_flow import sensors  # noqa: F401  (the fixture: a published Sensors dataset)

STEPS = [{"op": "drop_duplicates"}, {"op": "fill_missing", "columns": {"温度": "median"}}]


def login(user):
    client = Client()
    client.force_login(user)
    return client


def payload(steps=STEPS, joins=None, name="clean"):
    return {"name": name, "steps": json.dumps(steps, ensure_ascii=False), "joins": json.dumps(joins or {})}


@pytest.fixture
def machines(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="Machines")
    raw = "机器,线\nM1,L1\nM2,L2\n".encode()
    version = services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(raw), filename="m.csv")
    services.version_ingest(version.pk)
    return dataset


def test_member_saves_a_recipe_from_the_builder_with_cleaned_steps(member, sensors):  # noqa: F811
    response = login(member).post(f"/data/{sensors.pk}/recipes/", payload())
    assert response.status_code == 302 and response["Location"] == f"/data/{sensors.pk}/"
    recipe = Recipe.objects.get()
    assert recipe.name == "clean" and recipe.joins == {}
    assert recipe.steps == [{"op": "drop_duplicates", "subset": None}, {"op": "fill_missing", "columns": {"温度": "median"}}]
    page = login(member).get(f"/data/{sensors.pk}/").content.decode()
    assert "Drop duplicate rows" in page and "Fill missing: 温度 → median" in page and "not run yet" in page


def test_a_join_step_saves_its_joined_dataset(member, sensors, machines):  # noqa: F811
    steps = [{"op": "join", "input": "machines", "on": ["机器"], "how": "left"}]
    response = login(member).post(f"/data/{sensors.pk}/recipes/", payload(steps, {"machines": str(machines.pk)}))
    assert response.status_code == 302
    recipe = Recipe.objects.get()
    assert recipe.joins == {"machines": str(machines.pk)}
    assert recipe.steps[0] == {"op": "join", "input": "machines", "on": ["机器"], "how": "left", "suffix": "_machines"}


def test_a_missing_column_is_a_400_naming_the_step_and_column_and_saves_nothing(member, sensors):  # noqa: F811
    datasets = Dataset.objects.count()
    steps = [{"op": "drop_duplicates"}, {"op": "fill_missing", "columns": {"湿度": "median"}}]
    response = login(member).post(f"/data/{sensors.pk}/recipes/", payload(steps))
    assert response.status_code == 400
    page = response.content.decode()
    assert "Step 2 (columns): Unknown column &#x27;湿度&#x27;" in page
    assert not Recipe.objects.exists() and Dataset.objects.count() == datasets
    # The person's steps come back in the form, for the builder to show again, with the error on step 2.
    assert "湿度" in page and 'id="recipe-step-errors"' in page
    errors = json.loads(page.split('id="recipe-step-errors" type="application/json">')[1].split("</script>")[0])
    assert list(errors) == ["1"] and "湿度" in errors["1"][0]


def test_a_join_with_a_dataset_the_user_cannot_use_is_refused(member, sensors, quality):  # noqa: F811
    other = Dataset.objects.create(department=quality, slug="secret", name="Secret")
    steps = [{"op": "join", "input": "s", "on": ["机器"]}]
    response = login(member).post(f"/data/{sensors.pk}/recipes/", payload(steps, {"s": str(other.pk)}))
    assert response.status_code == 400 and "that you may use" in response.content.decode()
    assert not Recipe.objects.exists()


def test_invalid_json_is_a_form_error(member, sensors):  # noqa: F811
    response = login(member).post(f"/data/{sensors.pk}/recipes/", {"name": "x", "steps": "[{not json"})
    assert response.status_code == 400 and not Recipe.objects.exists()


def test_preview_returns_the_sample_rows_and_computed_values(member, sensors):  # noqa: F811
    response = login(member).post(f"/data/{sensors.pk}/recipes/preview/", payload(), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="recipe-preview"' in page and "The sample gives 4 rows." in page
    assert "<th>机器</th>" in page and "<td>M3</td>" in page and "<td>1000</td>" in page
    assert "values › 温度: 90" in page  # the median that filled the gap (70, 90, 1000 after dedupe)
    assert not Recipe.objects.exists() and Dataset.objects.count() == 1


def test_preview_errors_come_back_inline(member, sensors):  # noqa: F811
    steps = [{"op": "select", "columns": ["nope"]}]
    htmx = login(member).post(f"/data/{sensors.pk}/recipes/preview/", payload(steps), HTTP_HX_REQUEST="true")
    # htmx does not swap 4xx answers (base.html's config), so its fragment with the error is a 200.
    assert htmx.status_code == 200 and "Step 1 (columns): Unknown column &#x27;nope&#x27;" in htmx.content.decode()
    plain = login(member).post(f"/data/{sensors.pk}/recipes/preview/", payload(steps))
    assert plain.status_code == 400 and "data-recipe-preview-errors" in plain.content.decode()


@pytest.mark.parametrize("path", ["/data/{pk}/recipes/", "/data/{pk}/recipes/preview/"])
def test_anonymous_is_sent_to_login(sensors, path):  # noqa: F811
    response = Client().post(path.format(pk=sensors.pk), payload())
    assert response.status_code == 302 and "/login" in response["Location"]
    assert not Recipe.objects.exists()


@pytest.mark.parametrize("path", ["/data/{pk}/recipes/", "/data/{pk}/recipes/preview/"])
def test_outsider_gets_404(outsider, sensors, path):  # noqa: F811
    assert login(outsider).post(path.format(pk=sensors.pk), payload()).status_code == 404
    assert not Recipe.objects.exists() and Dataset.objects.count() == 1


def test_viewer_cannot_save_or_preview_and_sees_no_builder(viewer, sensors):  # noqa: F811
    client = login(viewer)
    assert client.post(f"/data/{sensors.pk}/recipes/", payload()).status_code == 403
    assert client.post(f"/data/{sensors.pk}/recipes/preview/", payload(), HTTP_HX_REQUEST="true").status_code == 403
    assert not Recipe.objects.exists() and Dataset.objects.count() == 1
    page = client.get(f"/data/{sensors.pk}/").content.decode()
    assert "data-recipe-builder" not in page and "recipes.js" not in page


def test_builder_config_lists_columns_and_usable_datasets(member, sensors, machines):  # noqa: F811
    page = login(member).get(f"/data/{sensors.pk}/").content.decode()
    config = json.loads(page.split('id="recipe-builder-config" type="application/json">')[1].split("</script>")[0])
    assert [c["name"] for c in config["columns"]] == ["机器", "温度"]
    assert {d["label"]: d["columns"] for d in config["datasets"]}["Machines (production.machines)"] == ["机器", "线"]
    from datalake.engine.preview import OPS

    assert [op for op, _label in config["filterOps"]] == list(OPS)
    assert {k for k, _label in config["kinds"]} == {
        "select", "rename", "cast", "filter", "drop_duplicates", "drop_missing", "fill_missing",
        "clip_outliers", "normalise", "resample", "window", "join", "sql",
    }  # fmt: skip


def test_lineage_graph_and_last_run_after_a_run(member, sensors):  # noqa: F811
    recipe = services.recipe_create(actor=member, input_dataset=sensors, name="clean", steps=STEPS)
    version = services.recipe_run(actor=member, recipe=recipe)
    services.recipe_execute(version.pk)
    version.refresh_from_db()
    assert version.status == "published", version.error_message
    client = login(member)
    source_page = client.get(f"/data/{sensors.pk}/").content.decode()
    assert "v1 Published" in source_page
    output_page = client.get(f"/data/{recipe.output_dataset_id}/").content.decode()
    figure = json.loads(output_page.split('id="lineage-figure" type="application/json">')[1].split("</script>")[0])
    labels = [label for trace in figure["data"][1:] for label in trace["text"]]
    assert sorted(labels) == ["clean", "production.sensors v1", "production.sensors-clean v1"]
    assert f"/data/{sensors.pk}/" in [url for trace in figure["data"][1:] for url in trace["customdata"]]
    assert "Fill missing: 温度 → median" in output_page  # the steps that made it


def test_empty_lineage_says_what_creates_it(member, sensors):  # noqa: F811
    page = login(member).get(f"/data/{sensors.pk}/").content.decode()
    assert 'id="lineage-empty"' in page and "lineage-figure" not in page


def test_description_is_rendered_as_sanitised_markdown(member, outsider, sensors):  # noqa: F811
    description = "**温度** data <script>alert(1)</script>"
    services.dataset_update(actor=member, dataset=sensors, description=description, discoverable=True)
    page = login(member).get(f"/data/{sensors.pk}/").content.decode()
    assert "<strong>温度</strong> data &lt;script&gt;" in page and "<script>alert(1)" not in page
    # Other departments see discoverable datasets' descriptions in the catalog, as plain text.
    catalog = login(outsider).get("/data/").content.decode()
    assert "温度 data &lt;script&gt;alert(1)&lt;/script&gt;" in catalog and "<strong>温度" not in catalog
