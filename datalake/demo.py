"""The data lake's part of `manage.py load_demo`: one realistic dataset per department.

Generated with a fixed seed (datalake.engine.demo) and uploaded through the services like
any file, so each arrives as a pending version whose ingest job runs once a worker is up.
Idempotent: a dataset that exists already is left alone.
"""

from __future__ import annotations

import tempfile

from django.contrib.auth import get_user_model

from datalake import services
from datalake.engine.demo import write_demo_files
from datalake.models import Dataset
from lepton.models import Department

# (department, uploader, file key, name, slug, description, tags, checks)
DEMO_DATASETS = [
    (
        "maintenance",
        "maint-maintainer",
        "maintenance_sensors",
        "Press line sensors",
        "press-line-sensors",
        "One reading a minute from six presses over 30 days: vibration (mm/s), temperature (°C), current (A), rpm, "
        "pressure (bar), status, and whether a failure follows within 24 h.",
        ["sensors", "predictive-maintenance"],
        [
            {"type": "not_null", "column": "machine_id", "blocking": True},
            {"type": "range", "column": "temperature", "min": -20, "max": 200},
        ],
    ),
    (
        "quality",
        "qa-maintainer",
        "quality_inspections",
        "质检记录 Inspection records",
        "inspection-records",
        "Final inspection of pressed parts with the process parameters of their batch (GB18030 CSV with Chinese headers).",
        ["inspection", "gbk"],
        [{"type": "allowed_values", "column": "结果", "values": ["合格", "不合格"], "blocking": True}],
    ),
    (
        "quality",
        "qa-maintainer",
        "part_images",
        "零件图像 Part images",
        "part-images",
        "Grayscale images (48×48, 100 per class) of pressed parts from the visual inspection station, one folder per class: "
        "`ok`, or with a defect — `scratch`, `spot`, `crack`. For training a 2D CNN.",
        ["images", "inspection"],
        [{"type": "row_count", "min": 100, "blocking": True}],
    ),
    (
        "supply-chain",
        "scm-maintainer",
        "supply_demand",
        "Daily demand",
        "daily-demand",
        "Units sold per product and day over two years, with prices, promotions, holidays and stock-outs.",
        ["demand", "forecasting"],
        [{"type": "range", "column": "units_sold", "min": 0}],
    ),
    (
        "customer-service",
        "cs-maintainer",
        "service_tickets",
        "Service tickets",
        "service-tickets",
        "Customer tickets in Chinese and English with channel, product, category, priority and resolution time.",
        ["tickets", "text"],
        [],
    ),
]


def load_demo(*, created: list[str]) -> None:
    User = get_user_model()
    missing = [row for row in DEMO_DATASETS if not Dataset.objects.filter(department__slug=row[0], slug=row[4]).exists()]
    if not missing:
        return
    with tempfile.TemporaryDirectory(prefix="lepton-demo-") as folder:
        files = write_demo_files(folder)
        for dept_slug, username, key, name, slug, description, tags, checks in missing:
            department = Department.objects.filter(slug=dept_slug).first()
            uploader = User.objects.filter(username=username).first()
            if department is None or uploader is None:
                continue
            dataset = services.dataset_create(
                actor=uploader, department=department, name=name, slug=slug, description=description, tags=tags
            )
            if checks:
                services.dataset_update(actor=uploader, dataset=dataset, checks=checks)
            path = files[key]
            with open(path, "rb") as stream:
                services.dataset_upload(actor=uploader, dataset=dataset, stream=stream, filename=path.name)
            created.append(f"dataset {dept_slug}.{slug} (ingest queued)")
