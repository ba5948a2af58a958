"""The zh-hans catalogue: every message of the code and templates translated, the .mo compiled from the .po.

Many users read Chinese; an English string left in the zh-hans interface is a bug. These tests fail
when a change adds a message and nobody ran `makemessages` + translated + `compilemessages`
(the commands are in docs/development.md).
"""

import gettext
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
SOURCES = ["datalake", "lepton", "models_repo", "monitoring", "scheduling", "templates", "manage.py"]

needs_gettext = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) is not installed")


def statistics(po: Path) -> str:
    done = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stderr.strip()


@needs_gettext
def test_the_catalogue_has_no_untranslated_or_fuzzy_message():
    report = statistics(PO)
    assert "translated messages" in report
    assert "untranslated" not in report and "fuzzy" not in report, report


@needs_gettext
def test_the_compiled_catalogue_matches_the_po_file(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "-o", str(fresh), str(PO)], check=True)
    with MO.open("rb") as committed, fresh.open("rb") as compiled:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(compiled)._catalog, (
            "django.mo is stale: run manage.py compilemessages -l zh_Hans"
        )


@needs_gettext
@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext (xgettext) is not installed")
def test_every_message_in_the_code_is_in_the_catalogue(tmp_path):
    # makemessages on a copy of the sources, so that the checkout is not touched.
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
        else:
            shutil.copy(source, tmp_path / name)
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    done = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "lepton.settings", "LEPTON_VAR_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    report = statistics(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    assert "untranslated" not in report and "fuzzy" not in report, (
        f"{report}: run manage.py makemessages -l zh_Hans and translate the new messages"
    )
