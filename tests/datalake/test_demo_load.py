"""load_demo brings the data lake's demo datasets, and each one really ingests and publishes."""

from django.core.management import call_command

from datalake.models import Dataset, DatasetVersion
from tests.conftest import wait_for_job


def test_demo_datasets_ingest_and_publish_with_their_checks_passing(transactional_db, celery_worker, dispatcher, capsys):
    call_command("load_demo")
    assert Dataset.objects.count() == 5
    for version in DatasetVersion.objects.select_related("job", "dataset"):
        wait_for_job(version.job, timeout=120)
        version.refresh_from_db()
        assert version.status == "published", f"{version.dataset}: {version.error_message}"
        assert all(r["passed"] for r in version.check_results if r["blocking"]), version.check_results
    inspections = DatasetVersion.objects.get(dataset__slug="inspection-records")
    assert inspections.ingest_report["encoding"] == "gb18030"
    assert "结果" in [c["name"] for c in inspections.schema]
    assert DatasetVersion.objects.get(dataset__slug="press-line-sensors").row_count == 259_200
    images = DatasetVersion.objects.get(dataset__slug="part-images")
    assert images.format == "images" and images.profile["images"]["classes"] == {"crack": 60, "ok": 60, "scratch": 60, "spot": 60}
    # Continuous learning: the published inspection records trained Quality's predictor, whose v1
    # passed the gate and waits for a second maintainer in the inbox.
    from models_repo.models import PromotionRequest, RegisteredModel, TrainingRun

    run = TrainingRun.objects.get(registered_model__slug="part-quality")
    assert run.automatic and run.dataset_version == inspections
    wait_for_job(run.job, timeout=180)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    assert run.metrics["accuracy"] > 0.7, run.metrics
    model = RegisteredModel.objects.get(slug="part-quality")
    request = PromotionRequest.objects.get(model=model)
    assert (request.status, request.automatic, request.version.number) == ("pending", True, 1)
    # The README's walk-through: approve in the inbox, then predict with its example body.
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from models_repo import services as model_services

    qa_admin = get_user_model().objects.get(username="qa-admin")
    model_services.promotion_approve(actor=qa_admin, request=request, note="demo")
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(username="qa-member"))
    row = {
        "产线": "L1",
        "班次": "night",
        "操作员": "OP03",
        "物料批次": "B2401-003",
        "温度": 214.5,
        "湿度": 55,
        "压力": 92,
        "线速度": 14,
    }
    response = client.post("/api/v1/models/quality/part-quality/predict", {"dataframe_records": [row]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["version"] == 1 and len(response.json()["probabilities"]) == 1
    call_command("load_demo")  # idempotent: nothing new
    assert (Dataset.objects.count(), DatasetVersion.objects.count(), RegisteredModel.objects.count()) == (5, 5, 1)
