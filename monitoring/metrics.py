"""Drift gauges for /metrics, read from the database at scrape time (registered by monitoring.apps).

One series per feature of each production version's latest drift window, at most
MAX_SERIES in all (models in a stable order; the rest are left out and counted), so a
platform with many wide models cannot blow up Prometheus.
"""

from django.db.models import Max
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY

MAX_SERIES = 500
MODEL_LABELS = ["department", "model", "version"]


class DriftCollector:
    def describe(self):
        # Names only: the registry must not query the database at import time.
        yield GaugeMetricFamily("lepton_model_feature_drift_psi", "", labels=[*MODEL_LABELS, "feature", "status"])
        yield GaugeMetricFamily("lepton_model_drift_window_end_timestamp_seconds", "", labels=MODEL_LABELS)
        yield GaugeMetricFamily("lepton_model_drift_series_dropped", "")

    def collect(self):
        from models_repo.models import ModelAlias
        from models_repo.services import PRODUCTION
        from monitoring.models import FeatureDrift

        psi = GaugeMetricFamily(
            "lepton_model_feature_drift_psi",
            "PSI of each input of a production version over its latest drift window (monitoring.engine.drift).",
            labels=[*MODEL_LABELS, "feature", "status"],
        )
        ends = GaugeMetricFamily(
            "lepton_model_drift_window_end_timestamp_seconds",
            "End of the latest drift window computed for a production version.",
            labels=MODEL_LABELS,
        )
        aliases = ModelAlias.objects.filter(name=PRODUCTION).select_related("model__department", "version")
        production = {a.version_id: a for a in aliases.order_by("model_id")}
        latest = dict(
            FeatureDrift.objects.filter(version_id__in=production)
            .values("version")
            .annotate(last=Max("window_end"))
            .values_list("version", "last")
        )
        emitted = dropped = 0
        for version_id, alias in production.items():
            end = latest.get(version_id)
            if end is None:
                continue
            labels = [alias.model.department.slug, alias.model.slug, str(alias.version.number)]
            ends.add_metric(labels, end.timestamp())
            rows = FeatureDrift.objects.filter(version_id=version_id, window_end=end, psi__isnull=False).order_by("feature")
            for row in rows.values("feature", "psi", "status"):
                if emitted >= MAX_SERIES:
                    dropped += 1
                    continue
                psi.add_metric([*labels, row["feature"], row["status"]], row["psi"])
                emitted += 1
        yield psi
        yield ends
        yield GaugeMetricFamily(
            "lepton_model_drift_series_dropped", "Feature drift series left out to keep /metrics bounded.", value=dropped
        )


_registered = False


def register_collector() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(DriftCollector())
        _registered = True
