"""load_demo brings the data lake's demo datasets, and each one really ingests and publishes; the
demo models train on them in the worker and end in production (part-quality with a better
candidate waiting for approval)."""

import base64

from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from datalake.engine.demo import IMAGE_CLASSES, part_images, png_bytes
from datalake.models import Dataset, DatasetVersion
from lepton.jobs.models import Job
from lepton.models import AuditEvent
from models_repo import demo
from models_repo import services as model_services
from models_repo.models import ModelAlias, PromotionRequest, RegisteredModel, TrainingRun
from scheduling import demo as scheduling_demo
from scheduling.models import ScheduleRun, ShopProblem
from tests.conftest import wait_for

User = get_user_model()
FINISHED = ("succeeded", "failed", "cancelled")
# Department → the prefix of its demo logins (maintainer sets up the models, admin approves).
PEOPLE = {"maintenance": "maint", "quality": "qa", "customer-service": "cs", "supply-chain": "scm"}


def _predict(username: str, model: str, body: dict) -> dict:
    client = APIClient()
    client.force_authenticate(User.objects.get(username=username))
    response = client.post(f"/api/v1/models/{model}/predict", body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def _production(slug: str) -> int:
    return ModelAlias.objects.select_related("version").get(model__slug=slug, name="production").version.number


def test_demo_datasets_ingest_and_publish_with_their_checks_passing(transactional_db, celery_worker, dispatcher, monkeypatch):
    # The demo's own specs, but one epoch (and fewer sensor windows) for the Keras models: the
    # test checks the path through the worker, the demo's `make run` trains them fully.
    for spec, quick in ((demo.PRESS_FAULT_SPEC, {"stride": 240}), (demo.DEFECT_CNN_SPEC, {}), (demo.DEMAND_SPEC, {})):
        monkeypatch.setitem(spec, "keras", {**spec["keras"], "epochs": 1, **quick})
    monkeypatch.setattr(scheduling_demo, "TIME_LIMIT", 1)
    call_command("load_demo")
    assert Dataset.objects.count() == 5

    # The worker ingests the datasets and, by continuous learning, trains each model as soon as its
    # dataset is published (part-quality twice: the weak first version, then the full spec once
    # v1 is in production), so ingests and runs share its two slots in no fixed order.
    def all_done() -> bool:
        versions = DatasetVersion.objects.all()
        runs = TrainingRun.objects.all()
        ended = ("published", "failed")
        schedules = ScheduleRun.objects.all()
        return (
            all(v.status in ended for v in versions)
            and len(runs) == 6
            and all(r.status in FINISHED for r in runs)
            and all(s.status in FINISHED for s in schedules)
        )

    try:
        wait_for(all_done, timeout=900, interval=1, what="the demo's ingests and runs")
    except AssertionError:  # say where it stands: which runs exist, and what the worker is busy with
        versions = list(DatasetVersion.objects.values_list("dataset__slug", "status", "error_message"))
        runs = list(TrainingRun.objects.values_list("registered_model__slug", "status"))
        jobs = list(Job.objects.exclude(status="succeeded").values_list("kind", "status", "progress_message"))
        raise AssertionError(f"versions {versions}; runs {runs}; unfinished jobs {jobs}") from None
    for version in DatasetVersion.objects.select_related("dataset"):
        assert version.status == "published", f"{version.dataset}: {version.error_message}"
        assert all(r["passed"] for r in version.check_results if r["blocking"]), version.check_results
    inspections = DatasetVersion.objects.get(dataset__slug="inspection-records")
    assert inspections.ingest_report["encoding"] == "gb18030"
    assert "结果" in [c["name"] for c in inspections.schema]
    assert DatasetVersion.objects.get(dataset__slug="press-line-sensors").row_count == 259_200
    images = DatasetVersion.objects.get(dataset__slug="part-images")
    assert images.format == "images" and images.profile["images"]["classes"] == dict.fromkeys(IMAGE_CLASSES, 100)
    assert images.profile["images"]["sizes"] == {"48x48": 400}

    for run in TrainingRun.objects.select_related("job", "department", "created_by", "registered_model"):
        assert run.status == "succeeded", f"{run.registered_model}: {run.error_message}"
        assert run.automatic and run.created_by.username == PEOPLE[run.department.slug] + "-maintainer", run
    models = {m.slug: m for m in RegisteredModel.objects.all()}
    assert set(models) == {"press-fault", "part-quality", "defect-cnn", "ticket-router", "demand-forecast"}
    for model in models.values():
        assert model.description and model.card["intended_use"] and "demo" in model.tags, model
    assert {slug: model.versions.count() for slug, model in models.items()} == {
        "press-fault": 1,
        "part-quality": 2,
        "defect-cnn": 1,
        "ticket-router": 1,
        "demand-forecast": 1,
    }
    assert {slug: _production(slug) for slug in models} == dict.fromkeys(models, 1)
    # Each first version went through the gate and was approved by the department admin.
    first = PromotionRequest.objects.filter(version__number=1).select_related("decided_by", "model__department")
    assert len(first) == 5
    for request in first:
        assert request.status == "approved" and request.gate["passed"], request
        assert request.decided_by.username == PEOPLE[request.model.department.slug] + "-admin", request
    assert AuditEvent.objects.filter(action="promotion.approve").count() == 5

    # Quality: v2 (the full spec) beat v1 on the same holdout and waits for a second maintainer.
    quality = models["part-quality"]
    v1, v2 = quality.versions.order_by("number")
    assert [c["name"] for c in v1.input_schema] == ["温度", "压力"]
    assert v2.metrics["f1_macro"] > v1.metrics["f1_macro"] and v2.metrics["accuracy"] > 0.8, (v1.metrics, v2.metrics)
    waiting = PromotionRequest.objects.get(model=quality, version=v2)
    assert (waiting.status, waiting.automatic, waiting.gate["passed"], waiting.gate["production_version"]) == (
        "pending",
        True,
        True,
        1,
    )
    assert quality.retrain_spec == demo.QUALITY_SPEC

    # Each model predicts one row (a window, an image) through the API, with its production version.
    sensor_window = [[2.0, 55.0, 25.0, 1480.0, 6.0]] * demo.PRESS_FAULT_SPEC["keras"]["window"]
    answer = _predict("maint-member", "maintenance/press-fault", {"inputs": [sensor_window]})
    assert answer["version"] == 1 and answer["predictions"][0] in (0, 1)
    pixels, labels = part_images(per_class=1)
    image = base64.b64encode(png_bytes(pixels[list(labels).index("spot")])).decode()
    answer = _predict("qa-member", "quality/defect-cnn", {"inputs": [{"image": image}]})
    assert answer["version"] == 1 and answer["predictions"][0] in ("ok", "scratch", "spot", "crack")
    answer = _predict(
        "cs-member", "customer-service/ticket-router", {"dataframe_records": [{"text": "订单SO2412345还没有收到，已经过了9天。"}]}
    )
    assert answer["version"] == 1 and answer["predictions"] == ["delivery"]
    days = [[18.5, 0, 0, 220]] * demo.DEMAND_SPEC["keras"]["window"]
    answer = _predict("scm-member", "supply-chain/demand-forecast", {"inputs": [days]})
    assert answer["version"] == 1 and len(answer["predictions"]) == 1

    # The README's walk-through: predict with its example body, approve v2 in the inbox, predict again.
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
    answer = _predict("qa-member", "quality/part-quality", {"dataframe_records": [row]})
    assert answer["version"] == 1 and len(answer["probabilities"]) == 1
    model_services.promotion_approve(actor=User.objects.get(username="qa-admin"), request=waiting, note="demo")
    answer = _predict("qa-member", "quality/part-quality", {"dataframe_records": [row]})
    assert answer["version"] == 2 and len(answer["probabilities"]) == 1

    # Production's shop: a finished comparison, Q-learning no worse than any rule, CP-SAT's bound below all.
    shop = ShopProblem.objects.get(slug="machining-cell-b")
    assert (shop.n_jobs, shop.n_machines, shop.created_by.username) == (15, 10, "planner")
    made = {run.method: run for run in shop.runs.all()}
    assert set(made) == {"qlearning", "cpsat", "fifo", "spt", "lpt", "mwkr", "mor", "lor"}
    assert all(run.status == "succeeded" for run in made.values()), [(m, r.error_message) for m, r in made.items()]
    rules = [made[m].makespan for m in ("fifo", "spt", "lpt", "mwkr", "mor", "lor")]
    assert made["qlearning"].makespan <= min(rules) and made["cpsat"].lower_bound <= min(r.makespan for r in made.values())

    call_command("load_demo")  # idempotent: nothing new
    counts = (Dataset.objects.count(), DatasetVersion.objects.count(), RegisteredModel.objects.count())
    assert counts + (TrainingRun.objects.count(), ShopProblem.objects.count(), ScheduleRun.objects.count()) == (5, 5, 5, 6, 1, 8)
