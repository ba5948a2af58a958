"""What the collaboration tests share: a published dataset of Production, API and browser clients."""

import io

from django.test import Client
from rest_framework.test import APIClient

from datalake import services as datalake_services
from lepton.models import AuditEvent, Share

CSV = b"machine,temp\nM1,70.5\nM2,71.25\nM3,69.0\n"


def published_dataset(member, production, *, name="Sensors", discoverable=False):
    dataset = datalake_services.dataset_create(actor=member, department=production, name=name, discoverable=discoverable)
    version = datalake_services.dataset_upload(actor=member, dataset=dataset, stream=io.BytesIO(CSV), filename="s.csv")
    published = datalake_services.version_ingest(version.pk)
    assert published.status == "published", published.error_message
    return published


def api(user=None):
    client = APIClient(HTTP_ACCEPT="application/json")
    if user is not None:
        client.force_authenticate(user)
    return client


def browser(user=None):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def snapshot():
    """What a refused change must leave as it was."""
    return (Share.objects.count(), AuditEvent.objects.count(), list(Share.objects.values_list("level", "expires_at")))
