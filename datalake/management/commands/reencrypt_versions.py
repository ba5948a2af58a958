"""Encrypt stored dataset versions again with the current data key (after a rotation or a classification).

Rotation (docs/operations.md, “Data keys and rotation”): set LEPTON_DATA_KEY to the new key and
LEPTON_DATA_KEY_PREVIOUS to the old one, restart, run this command, then remove the old key.
Idempotent: a version already encrypted with the current key over every classified column is
left as it is, so running it twice, or after an interruption, is safe.
"""

from django.core.management.base import BaseCommand, CommandError

from datalake.services.sensitive import versions_reencrypt
from lepton.errors import ServiceError


class Command(BaseCommand):
    help = "Re-encrypt the stored versions of datasets with sensitive columns with the current LEPTON_DATA_KEY."

    def handle(self, *args, **options):
        try:
            counts = versions_reencrypt()
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{counts['encrypted']} version(s) encrypted again, {counts['unchanged']} already current.")
