"""Encrypt every stored credential again with the first key of LEPTON_ENCRYPTION_KEYS.

Key rotation (docs/operations.md): put the new key first, keep the old one after it, restart,
run this command, then remove the old key. A credential no configured key opens is named and
left as it is (its import fails until a maintainer enters the password again); the command
then exits 1.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from datalake.models import DatabaseImport
from lepton import crypto


class Command(BaseCommand):
    help = "Re-encrypt stored database-import passwords with the first LEPTON_ENCRYPTION_KEYS key."

    def handle(self, *args, **options):
        rotated, unreadable = 0, []
        with transaction.atomic():
            for item in DatabaseImport.objects.select_for_update().exclude(password_encrypted="").select_related("dataset"):
                try:
                    token = crypto.rotate(item.password_encrypted)
                except crypto.CredentialError:
                    unreadable.append(item)
                    continue
                DatabaseImport.objects.filter(pk=item.pk).update(password_encrypted=token)
                rotated += 1
        self.stdout.write(f"{rotated} credential(s) encrypted with the first key.")
        if unreadable:
            names = ", ".join(f"{item.dataset.department.slug}/{item.dataset.slug}" for item in unreadable)
            raise CommandError(
                f"{len(unreadable)} credential(s) no configured key opens, left unchanged: {names}. "
                "Enter their passwords again on the dataset page."
            )
