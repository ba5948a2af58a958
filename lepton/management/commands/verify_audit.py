"""Check the audit log's hash chain (lepton/audit.py): OK with the count, or the first broken link."""

from django.core.management.base import BaseCommand, CommandError

from lepton import audit


class Command(BaseCommand):
    help = "Seal pending audit events, then verify the whole hash chain; exit 1 at the first broken link."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-seal",
            action="store_true",
            help="Verify only; leave events that wait for sealing as they are (they are counted).",
        )

    def handle(self, *args, no_seal=False, **options):
        if not no_seal:
            audit.seal_pending()
        report = audit.verify()
        if not report.ok:
            raise CommandError(
                f"Audit chain broken at event {report.broken_id} (position {report.broken_seq}): {report.reason}. "
                f"{report.checked} events before it are intact."
            )
        pending = f", {report.pending} waiting to be sealed" if report.pending else ""
        self.stdout.write(f"OK: {report.checked} audit events verified{pending}; head {report.head or '(empty)'}")
