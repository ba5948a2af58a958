# Every prediction request is logged with an id of its own (monitoring's feedback API).
# Existing rows get a fresh uuid each before the column becomes unique.

import uuid

from django.db import migrations, models


def give_ids(apps, schema_editor):
    PredictionLog = apps.get_model("models_repo", "PredictionLog")
    batch = []
    for log in PredictionLog.objects.filter(prediction_id__isnull=True).only("id").iterator(chunk_size=2000):
        log.prediction_id = uuid.uuid4()
        batch.append(log)
        if len(batch) >= 2000:
            PredictionLog.objects.bulk_update(batch, ["prediction_id"])
            batch = []
    if batch:
        PredictionLog.objects.bulk_update(batch, ["prediction_id"])


class Migration(migrations.Migration):

    dependencies = [
        ("models_repo", "0006_run_resources"),
    ]

    operations = [
        migrations.AddField(
            model_name="predictionlog",
            name="prediction_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(give_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="predictionlog",
            name="prediction_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name="predictionlog",
            name="status_code",
            field=models.PositiveSmallIntegerField(default=200),
        ),
        migrations.AddField(
            model_name="predictionlog",
            name="error",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddIndex(
            model_name="predictionlog",
            index=models.Index(fields=["model", "created_at"], name="prediction_log_model_time"),
        ),
        migrations.AddIndex(
            model_name="predictionlog",
            index=models.Index(fields=["version", "created_at"], name="prediction_log_version_time"),
        ),
    ]
