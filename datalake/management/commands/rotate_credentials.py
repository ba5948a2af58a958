"""Encrypt every stored credential again with the first key of LEPTON_ENCRYPTION_KEYS:
database-import passwords and alert rules' webhook secrets (monitoring.alerts).

Key rotation (docs/operations.md): put the new key first, keep the old one after it, restart,
run this command, then remove the old key. A credential no configured key opens is named and
left as it is (its import fails until a maintainer enters the password again); the command
then exits 1.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from datalake.models import DatabaseImport
from lepton import crypto
from monitoring.alerts.models import AlertRule


class Command(BaseCommand):
    help = "Re-encrypt stored database-import passwords and webhook secrets with the first LEPTON_ENCRYPTION_KEYS key."

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
            lost_rules = []
            for rule in AlertRule.objects.select_for_update().exclude(webhook_secret_encrypted="").select_related("department"):
                try:
                    token = crypto.rotate(rule.webhook_secret_encrypted)
                except crypto.CredentialError:
                    lost_rules.append(rule)
                    continue
                AlertRule.objects.filter(pk=rule.pk).update(webhook_secret_encrypted=token)
                rotated += 1
        self.stdout.write(f"{rotated} credential(s) encrypted with the first key.")
        problems = []
        if unreadable:
            names = ", ".join(f"{item.dataset.department.slug}/{item.dataset.slug}" for item in unreadable)
            problems.append(
                f"{len(unreadable)} credential(s) no configured key opens, left unchanged: {names}. "
                "Enter their passwords again on the dataset page."
            )
        if lost_rules:
            names = ", ".join(f"{rule.department.slug}/{rule.name}" for rule in lost_rules)
            problems.append(
                f"{len(lost_rules)} webhook secret(s) of alert rules no configured key opens: {names}. "
                "Renew each secret on the rule's page and give it to the receiver."
            )
        if problems:
            raise CommandError(" ".join(problems))
