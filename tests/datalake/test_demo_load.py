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
    call_command("load_demo")  # idempotent: nothing new
    assert (Dataset.objects.count(), DatasetVersion.objects.count(), RegisteredModel.objects.count()) == (5, 5, 1)
