"""Restore a `manage.py backup` archive: check it whole, write its blobs, then replace the database in one transaction."""

from django.core.management.base import BaseCommand, CommandError

from lepton.backup import BackupError, _human, restore_backup


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into a migrated database (the same release). Refuses a "
        "database that holds data unless --force, which replaces everything in it. Stop web, workers and "
        "dispatcher first."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", help="The archive `manage.py backup` wrote.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace the data already in the database (every table is emptied first, in the same transaction).",
        )

    def handle(self, *args, archive, force=False, **options):
        try:
            summary = restore_backup(archive, force=force, log=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {sum(summary.rows.values())} rows in {len(summary.rows)} tables and {summary.blobs} blobs "
                f"({_human(summary.blob_bytes)}; {summary.blobs_written} written to the lake, "
                f"{summary.blobs - summary.blobs_written} already there) "
                f"from {archive}. Run `python manage.py verify_audit` and keep its head hash."
            )
        )
