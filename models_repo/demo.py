"""The model repository's part of `manage.py load_demo`.

Quality's part-quality predictor follows the demo inspection records by continuous learning:
when the worker publishes the dataset's first version, a random forest trains on it, registers
v1 and (passing the gate, as no version serves production yet) opens a promotion request that
waits in Quality's inbox for a second maintainer. Idempotent: an existing model is left alone.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from datalake.models import Dataset, VersionStatus
from lepton.models import Department
from models_repo import services
from models_repo.models import RegisteredModel

QUALITY_SPEC = {
    "task": "classification",
    "target": "结果",
    "features": ["产线", "班次", "操作员", "物料批次", "温度", "湿度", "压力", "线速度"],
    "algorithms": [{"name": "random_forest", "params": {"n_estimators": 100, "min_samples_leaf": 2}}],
    "seed": 42,
}


def load_demo(*, created: list[str]) -> None:
    department = Department.objects.filter(slug="quality").first()
    maintainer = get_user_model().objects.filter(username="qa-maintainer").first()
    dataset = Dataset.objects.filter(department__slug="quality", slug="inspection-records").first()
    if department is None or maintainer is None or dataset is None:
        return
    if RegisteredModel.objects.filter(department=department, slug="part-quality").exists():
        return
    model = services.model_create(
        actor=maintainer,
        department=department,
        slug="part-quality",
        name="零件质量预测 Part quality predictor",
        description=(
            "Predicts whether a moulded part fails final inspection from the process parameters of its batch "
            "(random forest; re-trained on every new version of the inspection records)."
        ),
        tags=["quality", "random-forest"],
        task="classification",
        card={
            "intended_use": "Flag parts for a second inspection before packing; not a replacement for the inspection.",
            "data": "Quality's inspection records (GB18030 CSV from the inspection station).",
            "limitations": "Trained on lines L1–L3 only; new lines or materials need new data first.",
            "owner": "Quality maintainers",
        },
    )
    services.continuous_set(actor=maintainer, model=model, dataset=dataset, spec=QUALITY_SPEC, auto_promote=True)
    created.append("model quality/part-quality (trains when the inspection records are published)")
    latest = dataset.versions.filter(status=VersionStatus.PUBLISHED).order_by("-number").first()
    if latest is not None:  # the data arrived before the model (load_demo run again later)
        services.training_start(actor=maintainer, dataset_version=latest, spec=QUALITY_SPEC, registered_model=model)
