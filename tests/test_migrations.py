"""Every model change has its migration (a missing one breaks `make run` on a fresh machine)."""

from io import StringIO

from django.core.management import call_command


def test_no_model_change_lacks_a_migration(db):
    out = StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # --check exits 1 when a migration would be written
        raise AssertionError(f"missing migrations:\n{out.getvalue()}") from exc
