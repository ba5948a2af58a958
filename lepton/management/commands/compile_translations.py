"""Compile the message catalogues (locale/*/LC_MESSAGES/*.po) into the .mo files Django reads, in pure Python.

The .mo files are built, not committed: `make run`, `make test` and the Dockerfile run this command, and the
test session runs it too (tests/conftest.py). Django's own compilemessages needs GNU gettext's msgfmt, which a
fresh machine or the python:3.11-slim image lacks; polib writes the same catalogue (tests/lepton/test_locale.py
compares the two where msgfmt is installed). Fuzzy and untranslated entries are left out, as msgfmt does.

A catalogue is compiled only when its .mo is missing or older than the .po (--force: always).
"""

import os
from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


def catalogues() -> list[Path]:
    return sorted(po for root in settings.LOCALE_PATHS for po in Path(root).glob("*/LC_MESSAGES/*.po"))


def compile_catalogue(po: Path, *, force: bool = False) -> bool:
    """Write `po`'s .mo beside it when missing or stale; whether it was written."""
    mo = po.with_suffix(".mo")
    if not force and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return False
    # Written beside and renamed: a server reading the catalogue never sees half a file.
    partial = mo.with_suffix(f".mo.{os.getpid()}.partial")  # per process: parallel test workers compile too
    polib.pofile(str(po)).save_as_mofile(str(partial))
    partial.replace(mo)
    return True


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po into .mo files (pure Python; no GNU gettext needed)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Compile even when the .mo is up to date.")

    def handle(self, *args, force=False, **options):
        for po in catalogues():
            if compile_catalogue(po, force=force):
                self.stdout.write(f"Compiled {po.with_suffix('.mo').relative_to(settings.BASE_DIR)}")
