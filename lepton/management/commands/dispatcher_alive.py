"""Exit 0 when a dispatcher passed recently, 1 otherwise (a container healthcheck)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lepton.jobs.dispatcher import dispatcher_last_pass_age


class Command(BaseCommand):
    help = "Succeed when the job dispatcher has passed within LEPTON_DISPATCHER_STALE_SECONDS."
    requires_system_checks: list = []

    def handle(self, *args, **options):
        age = dispatcher_last_pass_age()
        if age is None:
            raise CommandError("No dispatcher has run yet.")
        if age > settings.LEPTON_DISPATCHER_STALE_SECONDS:
            raise CommandError(f"The dispatcher last passed {age:.0f} s ago.")
        self.stdout.write(f"dispatcher passed {age:.1f} s ago")
