"""Job kinds of the core. `lepton.selfcheck` proves the platform end to end:
a worker picks it up, touches the database, writes and reads back storage, and reports timings.
"""

import time

from django.db import connection
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from lepton.jobs.registry import job_kind
from lepton.storage import get_storage


class SelfCheckParams(serializers.Serializer):
    # Labels and help are shown on the Jobs page's start form (lepton.forms.JobStartForm), in the reader's language.
    steps = serializers.IntegerField(
        min_value=1, max_value=20, default=5, label=_("Steps"), help_text=_("How many probe rounds to run.")
    )
    pause_seconds = serializers.FloatField(
        min_value=0,
        max_value=10,
        default=0.3,
        label=_("Pause seconds"),
        help_text=_("Pause between rounds, so progress can be watched."),
    )
    probe_bytes = serializers.IntegerField(
        min_value=1,
        max_value=16 * 1024 * 1024,
        default=64 * 1024,
        label=_("Probe bytes"),
        help_text=_("Size of the storage probe written each round."),
    )


@job_kind("lepton.selfcheck", params=SelfCheckParams, time_limit=300, label=_("Platform self-check"), user_startable=True)
def selfcheck(ctx, params):
    import os

    storage = get_storage()
    timings = {"database_ms": [], "storage_write_ms": [], "storage_read_ms": []}
    steps = params.get("steps", 5)
    for step in range(1, steps + 1):
        ctx.check_cancelled()
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        t1 = time.perf_counter()
        payload = os.urandom(params.get("probe_bytes", 65536))
        blob = storage.put_bytes(payload)
        t2 = time.perf_counter()
        if storage.read_bytes(blob.sha256) != payload:
            raise RuntimeError(gettext("Storage returned different bytes than were written."))
        t3 = time.perf_counter()
        storage.delete(blob.sha256)
        timings["database_ms"].append(round((t1 - t0) * 1000, 3))
        timings["storage_write_ms"].append(round((t2 - t1) * 1000, 3))
        timings["storage_read_ms"].append(round((t3 - t2) * 1000, 3))
        # In the language of who started it (the job runs in it: lepton.jobs.runner).
        message = gettext("Round %(step)s of %(steps)s: database and storage answered.") % {"step": step, "steps": steps}
        ctx.progress(100 * step / steps, message)
        if step < steps:
            time.sleep(params.get("pause_seconds", 0.3))
    ctx.log(
        gettext("Storage %(storage)s and database %(database)s answered %(steps)s rounds.")
        % {"storage": storage.public_url(), "database": connection.vendor, "steps": steps}
    )
    return {
        "database": connection.vendor,
        "storage": storage.public_url(),
        "rounds": steps,
        "timings_ms": {k: {"max": max(v), "mean": round(sum(v) / len(v), 3)} for k, v in timings.items()},
    }


class NoticeEmailParams(serializers.Serializer):
    notices = serializers.ListField(child=serializers.IntegerField(), help_text="The notices to e-mail.")


def _notice_emails(ctx, params) -> dict:
    """E-mail in-app notices to their people (lepton.collab.services.notice_emails_send)."""
    from lepton.collab.services import notice_emails_send

    return {"sent": notice_emails_send(params["notices"])}


# A mail server that is down fails the job; a second attempt covers a blip (sent notices are marked first).
job_kind("lepton.notice_emails", label="E-mail notices", params=NoticeEmailParams, time_limit=300, max_attempts=2)(_notice_emails)
