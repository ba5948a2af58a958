"""Start-up check of the data key of sensitive columns (datalake.services.sensitive).

`make run` (and `manage.py check --database default`) refuses to go on when the database holds
classified columns or encrypted versions and LEPTON_DATA_KEY is missing, malformed, or not the
key those versions were encrypted with. The key itself is never stored: each encrypted version
records a check value of its key (`DatasetVersion.encryption_key_id`, an HMAC of a constant),
compared here with the check values of the configured keys. With nothing classified no key is
needed, so a fresh machine starts without one.
"""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError

HINT = (
    "Set LEPTON_DATA_KEY (or LEPTON_DATA_KEY_FILE) to the data key, 16, 24 or 32 random bytes as hex or base64; "
    "after a rotation keep the old key in LEPTON_DATA_KEY_PREVIOUS until `manage.py reencrypt_versions` has run. "
    "See docs/operations.md, “Data keys and rotation”."
)


def data_key_problem() -> str | None:
    """Why the configured data key cannot serve the data in the database, or None."""
    from datalake.engine.sensitive import DataKeyError, KeyRing
    from datalake.models import Dataset, DatasetVersion

    try:
        classified = Dataset.objects.exclude(sensitive_columns={}).count()
        used = set(DatasetVersion.objects.exclude(encryption_key_id="").values_list("encryption_key_id", flat=True).distinct())
    except DatabaseError:  # not migrated yet: nothing can be classified
        return None
    configured = bool((settings.LEPTON_DATA_KEY or "").strip() or settings.LEPTON_DATA_KEY_PREVIOUS)
    if not classified and not used and not configured:
        return None
    try:
        ring = KeyRing.from_text(settings.LEPTON_DATA_KEY, settings.LEPTON_DATA_KEY_PREVIOUS)
    except DataKeyError as exc:
        if exc.code == "data_key_missing":
            return (
                f"LEPTON_DATA_KEY is not set, but {classified} dataset(s) have sensitive columns and {len(used)} data key(s) "
                "encrypted stored versions; Lepton refuses to start rather than store or serve them unencrypted. "
                "(Without classified columns no key is needed.)"
            )
        return f"The data key is malformed: {exc.message}"
    unknown = sorted(used - set(ring.by_id()))
    if unknown:
        return (
            f"LEPTON_DATA_KEY is wrong: stored versions are encrypted with data key(s) {', '.join(unknown)}, and neither "
            f"LEPTON_DATA_KEY (check value {ring.current_id}) nor LEPTON_DATA_KEY_PREVIOUS is that key."
        )
    return None


@register(Tags.database, deploy=False)
def check_data_key(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    problem = data_key_problem()
    return [Error(problem, hint=HINT, id="datalake.E001")] if problem else []
