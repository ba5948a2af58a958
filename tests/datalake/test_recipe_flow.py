"""Recipes end to end: save, preview on a sample, run as a job on a real worker, lineage."""

import io

import pytest
from rest_framework.test import APIClient

from datalake import services
from datalake.models import Dataset, DatasetVersion, Recipe
from lepton.models import LineageEdge
from tests.conftest import wait_for_job

RAW = "机器,温度\nM1,70\nM1,\nM2,90\nM2,90\nM3,1000\n".encode()
STEPS = [
    {"op": "drop_duplicates"},
    {"op": "fill_missing", "columns": {"温度": "median"}},
    {"op": "clip_outliers", "columns": ["温度"], "method": "percentile", "low": 0.0, "high": 0.75},
]


@pytest.fixture
def sensors(member, production):
    dataset = services.dataset_create(actor=member, department=production, name="Sensors")
    version = services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(RAW), filename="s.csv")
    services.version_ingest(version.pk)
    return dataset


def api(user=None):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    return client


def create(user, dataset, steps=STEPS):
    return api(user).post("/api/v1/recipes/", {"input_dataset": str(dataset.pk), "name": "clean", "steps": steps}, format="json")


@pytest.mark.s3
def test_recipe_preview_and_run_publish_a_new_version_with_lineage(member, sensors, celery_worker, dispatcher):
    response = create(member, sensors)
    assert response.status_code == 201, response.json()
    recipe = Recipe.objects.get(pk=response.json()["id"])
    assert recipe.output_dataset.name == "Sensors (clean)"
    preview = api(member).post(f"/api/v1/recipes/{recipe.pk}/preview/", {}, format="json").json()
    assert preview["rows"] == 4 and preview["preview"]["columns"] == ["机器", "温度"]
    run = api(member).post(f"/api/v1/recipes/{recipe.pk}/run/")
    assert run.status_code == 202
    version = DatasetVersion.objects.get(pk=run.json()["id"])
    wait_for_job(version.job, timeout=60)
    version.refresh_from_db()
    assert version.status == "published", version.error_message
    assert (version.number, version.row_count, version.source) == (1, 4, "recipe")
    source = DatasetVersion.objects.get(dataset=sensors)
    edge = LineageEdge.objects.get()
    assert (edge.from_id, edge.to_id, edge.via_id) == (str(source.pk), str(version.pk), str(recipe.pk))
    lineage = api(member).get(f"/api/v1/datasets/{sensors.pk}/lineage/").json()
    assert lineage["edges"][0]["to"]["label"] == "production.sensors-clean v1"
    rows = services.version_preview(actor=member, version=version, sort="温度")["rows"]
    assert max(r[1] for r in rows) < 1000  # the outlier was clipped


def test_a_recipe_output_over_the_storage_quota_fails_and_publishes_nothing(member, sensors, production):
    recipe = services.recipe_create(actor=member, input_dataset=sensors, name="clean", steps=STEPS)
    production.storage_bytes_quota = services.department_storage_used(production) + 10  # the output cannot fit
    production.save(update_fields=["storage_bytes_quota"])
    version = services.recipe_execute(services.recipe_run(actor=member, recipe=recipe).pk)
    assert version.status == "failed" and "storage quota" in version.error_message
    assert version.number is None and not recipe.output_dataset.versions.filter(status="published").exists()
    assert not LineageEdge.objects.exists()
    # With room again, the same recipe publishes.
    production.storage_bytes_quota = 10**9
    production.save(update_fields=["storage_bytes_quota"])
    retried = services.recipe_execute(services.recipe_run(actor=member, recipe=recipe).pk)
    assert (retried.status, retried.number) == ("published", 1) and LineageEdge.objects.count() == 1


def test_invalid_steps_are_refused_naming_the_step_and_field(member, sensors):
    response = create(member, sensors, [{"op": "rename", "columns": {"温度": "t"}}, {"op": "select", "columns": ["温度"]}])
    assert response.status_code == 400
    assert any(key.startswith("steps.1") for key in response.json()["fields"]), response.json()
    assert not Recipe.objects.exists() and Dataset.objects.count() == 1


def test_recipe_needs_a_published_input(member, production):
    empty = services.dataset_create(actor=member, department=production, name="Empty")
    response = create(member, empty)
    assert response.status_code == 400 and response.json()["error"] == "no_published_version"


def test_viewer_cannot_create_or_run(viewer, member, sensors):
    assert create(viewer, sensors).status_code == 403
    recipe = services.recipe_create(actor=member, input_dataset=sensors, name="clean", steps=STEPS)
    assert api(viewer).post(f"/api/v1/recipes/{recipe.pk}/run/").status_code == 403


def test_anonymous_and_outsider(member, outsider, sensors):
    recipe = services.recipe_create(actor=member, input_dataset=sensors, name="clean", steps=STEPS)
    for method, path in (
        ("get", "/api/v1/recipes/"),
        ("post", "/api/v1/recipes/"),
        ("get", f"/api/v1/recipes/{recipe.pk}/"),
        ("post", f"/api/v1/recipes/{recipe.pk}/preview/"),
        ("post", f"/api/v1/recipes/{recipe.pk}/run/"),
        ("get", f"/api/v1/datasets/{sensors.pk}/lineage/"),
    ):
        assert getattr(api(), method)(path, {}, format="json").status_code == 401
    assert api(outsider).get("/api/v1/recipes/").json()["results"] == []
    for method, path in (
        ("get", f"/api/v1/recipes/{recipe.pk}/"),
        ("post", f"/api/v1/recipes/{recipe.pk}/preview/"),
        ("post", f"/api/v1/recipes/{recipe.pk}/run/"),
        ("get", f"/api/v1/datasets/{sensors.pk}/lineage/"),
    ):
        assert getattr(api(outsider), method)(path, {}, format="json").status_code == 404
    assert create(outsider, sensors).status_code == 404
    assert DatasetVersion.objects.filter(source="recipe").count() == 0
