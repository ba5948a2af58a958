"""Write the database and every lake blob it names to one tar file (lepton/backup.py explains the format)."""

from django.core.management.base import BaseCommand, CommandError

from lepton.backup import BackupError, _human, create_backup


class Command(BaseCommand):
    help = (
        "Back up the database and the lake blobs it names into one archive (OUT.tar, or OUT.tar.gz to compress). "
        "Safe while Lepton runs: the rows come from one snapshot."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", help="The archive to write; it must not exist yet.")

    def handle(self, *args, out, **options):
        try:
            summary = create_backup(out, log=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        chain = summary.audit
        state = "verified" if chain.get("ok") else "BROKEN (see manage.py verify_audit)"
        self.stdout.write(
            self.style.SUCCESS(
                f"Backed up {sum(summary.rows.values())} rows in {len([c for c in summary.rows.values() if c])} tables "
                f"and {summary.blobs} blobs ({_human(summary.blob_bytes)}) to {out}. "
                f"Audit chain {state}: {chain.get('checked', 0)} events, head {chain.get('head') or '(empty)'}."
            )
        )
