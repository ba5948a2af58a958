"""Queue the ONNX conversion of scikit-learn versions that never had one.

Versions registered before the conversion job existed (or restored from a backup of that
time) serve natively; this queues the same job a new version gets at registration
(models_repo.services.registry.version_onnx_queue). Versions already converted, pending, or
with a recorded reason to stay native are left alone; `--retry-native` queues the last ones too
(after an upgrade of skl2onnx, say).
"""

from django.core.management.base import BaseCommand

from models_repo.models import ModelVersion
from models_repo.services.registry import version_onnx_queue


class Command(BaseCommand):
    help = "Queue ONNX conversion jobs for scikit-learn versions trained on the platform that have none."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List the versions; queue nothing.")
        parser.add_argument("--retry-native", action="store_true", help="Also versions whose earlier conversion was not used.")

    def handle(self, *args, dry_run: bool = False, retry_native: bool = False, **options):
        versions = ModelVersion.objects.filter(
            flavor="sklearn", run__isnull=False, onnx_sha256="", archived_at__isnull=True
        ).select_related("model__department")
        chosen = []
        for version in versions.order_by("model__department__slug", "model__slug", "number"):
            status = (version.onnx_report or {}).get("status")
            if status is None or (retry_native and status != "pending"):
                chosen.append(version)
        for version in chosen:
            self.stdout.write(f"{'would queue' if dry_run else 'queued'} {version}")
            if not dry_run:
                version_onnx_queue(version.pk)
        self.stdout.write(f"{len(chosen)} version(s) {'to convert' if dry_run else 'queued for conversion'}.")
