"""Alert gauges for /metrics, read at scrape time: unresolved alerts per department and kind,
webhook deliveries by outcome (registered by monitoring.apps)."""

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY


class AlertCollector:
    def describe(self):
        # Names only: the registry must not query the database at import time.
        yield GaugeMetricFamily("lepton_alerts_unresolved", "", labels=["department", "kind"])
        yield GaugeMetricFamily("lepton_alert_webhook_deliveries", "", labels=["outcome"])

    def collect(self):
        from monitoring.alerts.models import Alert, AlertState, DeliveryStatus, WebhookDelivery

        unresolved = GaugeMetricFamily(
            "lepton_alerts_unresolved", "Open or acknowledged alerts per department and rule kind.", labels=["department", "kind"]
        )
        rows = (
            Alert.objects.exclude(state=AlertState.RESOLVED)
            .values("department__slug", "kind")
            .annotate(n=Count("pk"))
            .order_by("department__slug", "kind")
        )
        for row in rows:
            unresolved.add_metric([row["department__slug"], row["kind"]], row["n"])
        deliveries = GaugeMetricFamily(
            "lepton_alert_webhook_deliveries",
            "Webhook deliveries kept, by outcome (pending, delivered, failed).",
            labels=["outcome"],
        )
        counts = dict(WebhookDelivery.objects.values("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in DeliveryStatus.values:
            deliveries.add_metric([status], counts.get(status, 0))
        yield unresolved
        yield deliveries


_registered = False


def register_collector() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(AlertCollector())
        _registered = True
