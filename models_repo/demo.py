"""The model repository's part of `manage.py load_demo`: one or two models per department.

Every demo model follows its demo dataset by continuous learning, set up by the department's
maintainer (runs are started with their rights), so it trains in the worker as soon as the data
lake publishes the dataset, whatever order the ingest jobs finish in:

- Maintenance `press-fault`: an LSTM over one-hour windows of the press sensors (per machine, in
  time order, a window starting every 30 minutes) flags a failure within 24 h;
- Quality `part-quality`: a random forest on the inspection records. Its first version is a weak
  one (ten shallow trees on two process values); once it is in production, continuous learning
  switches to the full spec, whose v2 passes the gate and waits in the promotion inbox for a
  second maintainer;
- Quality `defect-cnn`: a small 2D CNN on the part images (ok, scratch, spot, crack);
- Customer Service `ticket-router`: the category of a ticket from its Chinese or English text
  (character n-gram TF-IDF and a logistic regression);
- Supply Chain `demand-forecast`: tomorrow's units sold per product from the last four weeks
  (a 1D CNN over windows of sales, price, promotion and stock-outs).

The first version of each goes to production through the ordinary promotion request (opened by
continuous learning, gate passed) approved by the department admin: `first_version_to_production`
listens to models_repo.signals.version_registered in every process and acts only on these
models, tagged `demo`, before any version of them was in production.
Idempotent: a model that exists already is left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils.translation import gettext as _

from datalake.models import Dataset, DatasetVersion, VersionStatus
from lepton.errors import ServiceError
from lepton.models import Department
from models_repo import services
from models_repo.models import AliasEvent, PromotionRequest, PromotionStatus, RegisteredModel

logger = logging.getLogger("lepton.models_repo")
DEMO_TAG = "demo"

SENSORS = ["vibration", "temperature", "current", "rpm", "pressure"]
PRESS_FAULT_SPEC = {
    "task": "sequence_classification",
    "target": "failure_within_24h",
    "features": SENSORS,
    "time_column": "timestamp",
    "group_column": "machine_id",
    "algorithms": [{"name": "keras_lstm"}],
    "seed": 42,
    # 60 readings (one hour) per window; a window every 30 readings keeps ~8 600 of the 259 000
    # possible windows, so the run takes well under a minute on two CPU cores.
    "keras": {"window": 60, "stride": 30, "layers": 1, "units": 32, "epochs": 8, "batch_size": 64, "patience": 3},
}
QUALITY_FEATURES = ["产线", "班次", "操作员", "物料批次", "温度", "湿度", "压力", "线速度"]
# The first production version: deliberately modest, so that the re-trained candidate beats it.
QUALITY_FIRST_SPEC = {
    "task": "classification",
    "target": "结果",
    "features": ["温度", "压力"],
    "algorithms": [{"name": "random_forest", "params": {"n_estimators": 10, "max_depth": 3}}],
    "seed": 42,
}
QUALITY_SPEC = {
    "task": "classification",
    "target": "结果",
    "features": QUALITY_FEATURES,
    "algorithms": [{"name": "random_forest", "params": {"n_estimators": 100, "min_samples_leaf": 2}}],
    "seed": 42,
}
DEFECT_CNN_SPEC = {
    "task": "image_classification",
    "target": "label",
    "algorithms": [{"name": "keras_cnn2d"}],
    "seed": 42,
    # 48 px: the size of the demo images (datalake/engine/demo/images.py), where a crack or a
    # scratch is one or two pixels wide. Random flips and rotations: a defect is a defect whichever
    # way the part lies, and 400 images are few. 40 epochs: the validation loss was still falling
    # at 30. Training took 11–15 s alone on two cores, 26 s in load_demo's worker beside the other
    # demo runs (tests/models_repo/test_demo.py trains it and checks that it learns).
    "keras": {
        "image_size": 48,
        "layers": 2,
        "filters": 32,
        "kernel_size": 5,
        "units": 64,
        "dropout": 0.2,
        "augment": True,
        "epochs": 40,
        "batch_size": 16,
        "patience": 8,
    },
}
TICKET_SPEC = {
    "task": "classification",
    "target": "category",
    "features": ["text"],
    "text_features": ["text"],
    "algorithms": [{"name": "logistic_regression"}],
    "seed": 42,
}
DEMAND_SPEC = {
    "task": "forecasting",
    "target": "units_sold",
    "features": ["price", "promotion", "stockout"],
    "time_column": "date",
    "group_column": "product_id",
    "algorithms": [{"name": "keras_cnn1d"}],
    "seed": 42,
    "keras": {"window": 28, "horizon": 1, "layers": 2, "filters": 16, "units": 32, "epochs": 20, "batch_size": 64, "patience": 4},
}


@dataclass(frozen=True)
class DemoModel:
    department: str
    maintainer: str  # sets up continuous learning; its runs start with this person's rights
    approver: str  # the other maintainer, who approves the first promotion
    dataset: str
    slug: str
    name: str
    description: str
    tags: list[str]
    task: str
    card: dict
    spec: dict
    # Once the first version is in production, continuous learning re-trains with this spec.
    then_spec: dict | None = None


DEMO_MODELS = [
    DemoModel(
        "maintenance",
        "maint-maintainer",
        "maint-admin",
        "press-line-sensors",
        "press-fault",
        "Press failure warning",
        "Flags a press that is likely to fail within 24 hours from its last hour of vibration, temperature, current, "
        "rpm and pressure readings (LSTM over sensor windows; re-trained on every new version of the sensor data).",
        [DEMO_TAG, "predictive-maintenance", "lstm"],
        "sequence_classification",
        {
            "intended_use": "Plan an inspection of a press before it breaks down; not a safety interlock.",
            "data": "Maintenance's press line sensors: six presses, one reading a minute, with failure labels.",
            "limitations": "Learnt from six presses over one month; a new press type needs its own history first. "
            "Input: 60 consecutive readings of one press, oldest first.",
            "owner": "Maintenance maintainers",
        },
        PRESS_FAULT_SPEC,
    ),
    DemoModel(
        "quality",
        "qa-maintainer",
        "qa-admin",
        "inspection-records",
        "part-quality",
        "零件质量预测 Part quality predictor",
        "Predicts whether a moulded part fails final inspection from the process parameters of its batch "
        "(random forest; re-trained on every new version of the inspection records).",
        [DEMO_TAG, "quality", "random-forest"],
        "classification",
        {
            "intended_use": "Flag parts for a second inspection before packing; not a replacement for the inspection.",
            "data": "Quality's inspection records (GB18030 CSV from the inspection station).",
            "limitations": "Trained on lines L1–L3 only; new lines or materials need new data first.",
            "owner": "Quality maintainers",
        },
        QUALITY_FIRST_SPEC,
        then_spec=QUALITY_SPEC,
    ),
    DemoModel(
        "quality",
        "qa-maintainer",
        "qa-admin",
        "part-images",
        "defect-cnn",
        "表面缺陷分类 Surface defect classifier",
        "Sorts a grayscale image of a pressed part into ok, scratch, spot or crack (a small 2D CNN).",
        [DEMO_TAG, "images", "cnn"],
        "image_classification",
        {
            "intended_use": "Pre-sort the visual inspection station's images; a person checks every part flagged.",
            "data": "Quality's part images (48×48 grayscale, 100 per class, one folder per class).",
            "limitations": "Learnt from 400 generated images of discs and plates on a conveyor belt, whose defects "
            "are clearer than most real ones. It sorts nearly all of its holdout images right (see the version's "
            "metrics); in trial runs on other seeds its few mistakes were mostly OK parts taken for scratched ones, "
            "or the reverse. That says nothing yet about photographs of real parts: train a version on those before "
            "relying on it.",
            "owner": "Quality maintainers",
        },
        DEFECT_CNN_SPEC,
    ),
    DemoModel(
        "customer-service",
        "cs-maintainer",
        "cs-admin",
        "service-tickets",
        "ticket-router",
        "工单分类 Ticket router",
        "Routes a customer ticket to delivery, defect, billing, installation or other from its text, Chinese or "
        "English (character n-gram TF-IDF and logistic regression).",
        [DEMO_TAG, "text", "tickets"],
        "classification",
        {
            "intended_use": "Suggest the queue of a new ticket; the agent can change it.",
            "data": "Customer Service's service tickets (Chinese and English), with the category they were filed under.",
            "limitations": "About 3 % of the training tickets were filed under a wrong category.",
            "owner": "Customer Service maintainers",
        },
        TICKET_SPEC,
    ),
    DemoModel(
        "supply-chain",
        "scm-maintainer",
        "scm-admin",
        "daily-demand",
        "demand-forecast",
        "Daily demand forecast",
        "Forecasts tomorrow's units sold of a product from its last four weeks of sales, price, promotions and "
        "stock-outs (1D CNN over daily windows).",
        [DEMO_TAG, "forecasting", "demand"],
        "forecasting",
        {
            "intended_use": "Day-ahead replenishment proposals for the twelve spare parts of the catalogue.",
            "data": "Supply Chain's daily demand: two years of sales per product.",
            "limitations": "Input: 28 consecutive days of one product, oldest first. Does not know tomorrow's "
            "promotions or holidays; stock-out days show sales, not demand.",
            "owner": "Supply Chain maintainers",
        },
        DEMAND_SPEC,
    ),
]


def load_demo(*, created: list[str]) -> None:
    User = get_user_model()
    for demo in DEMO_MODELS:
        department = Department.objects.filter(slug=demo.department).first()
        maintainer = User.objects.filter(username=demo.maintainer).first()
        dataset = Dataset.objects.filter(department__slug=demo.department, slug=demo.dataset).first()
        if department is None or maintainer is None or dataset is None:
            continue
        if RegisteredModel.objects.filter(department=department, slug=demo.slug).exists():
            continue
        model = services.model_create(
            actor=maintainer,
            department=department,
            slug=demo.slug,
            name=demo.name,
            description=demo.description,
            tags=demo.tags,
            task=demo.task,
            card=demo.card,
        )
        services.continuous_set(actor=maintainer, model=model, dataset=dataset, spec=demo.spec, auto_promote=True)
        created.append(f"model {demo.department}/{demo.slug} (trains when {dataset.slug} is published)")
        latest = dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
        if latest is not None:  # the data arrived before the model (load_demo run again later)
            services.training_start(actor=maintainer, dataset_version=latest, spec=demo.spec, registered_model=model)


def _demo_of(model: RegisteredModel) -> DemoModel | None:
    """The demo entry of a model that load_demo made (tagged demo, registered by the demo maintainer)."""
    for demo in DEMO_MODELS:
        if (demo.department, demo.slug) == (model.department.slug, model.slug):
            made_by_demo = model.created_by is not None and model.created_by.username == demo.maintainer
            return demo if made_by_demo and DEMO_TAG in model.tags else None
    return None


def first_version_to_production(sender, version, **kwargs) -> None:
    """version_registered receiver: a demo model's first version goes to production, approved by the admin.

    Uses continuous learning's pending request (or opens one as the maintainer), so the gate, the
    approval and the alias move are the ordinary, audited ones. Then, where the demo says so,
    continuous learning switches to the full spec and re-trains on the same data version.
    Does nothing for other models, or once any version of the model has been in production.
    """
    model = RegisteredModel.objects.select_related("department", "created_by").get(pk=version.model_id)
    demo = _demo_of(model)
    if demo is None or AliasEvent.objects.filter(model=model, alias=services.PRODUCTION).exists():
        return
    User = get_user_model()
    maintainer = User.objects.filter(username=demo.maintainer).first()
    approver = User.objects.filter(username=demo.approver).first()
    if maintainer is None or approver is None:
        return
    try:
        request = PromotionRequest.objects.filter(model=model, version=version, status=PromotionStatus.PENDING).first()
        if request is None:
            request = services.promotion_request(actor=maintainer, version=version, reason=_("First version of the demo."))
        if request.status != PromotionStatus.PENDING:
            logger.info("demo: %s v%s did not pass the gate; left out of production", model, version.number)
            return
        services.promotion_approve(actor=approver, request=request, note=_("First version of the demo."))
        if demo.then_spec is not None and model.retrain_dataset_id is not None:
            model = services.continuous_set(
                actor=maintainer, model=model, dataset=model.retrain_dataset, spec=demo.then_spec, auto_promote=True
            )
            data = DatasetVersion.objects.filter(pk=version.dataset_version_id).select_related("dataset").first()
            if data is not None:  # continuous learning's own start: the run is automatic and asks for promotion
                services.retrain_on_publish(sender=DatasetVersion, version=data)
    except ServiceError as exc:
        logger.warning("demo: %s v%s not put in production: %s", model, version.number, exc.message)
