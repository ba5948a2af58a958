"""Settings refuse unsafe or unreachable configurations with a clear message."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lepton import settings as lepton_settings

ROOT = Path(__file__).resolve().parents[2]


def _run(code, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)


SETUP = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'lepton.settings'); django.setup()"


def test_debug_false_with_the_default_secret_key_refuses_to_start(tmp_path):
    result = _run(SETUP, DEBUG="false", LEPTON_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr and "DEBUG is False" in result.stderr


def test_debug_false_with_a_secret_key_file_starts(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("a-long-random-production-secret-value-1234567890\n")
    result = _run(
        SETUP + "; from django.conf import settings; print(settings.SECRET_KEY)",
        DEBUG="false",
        SECRET_KEY_FILE=str(secret),
        LEPTON_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a-long-random-production-secret-value-1234567890"


def test_unreachable_database_url_is_named_at_start_up(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DATABASE_URL": "postgres://lepton:s3cret@127.0.0.1:1/lepton", "LEPTON_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "postgres://lepton:***@127.0.0.1:1/lepton cannot be reached" in result.stderr
    assert "s3cret" not in result.stderr


def test_unreachable_database_makes_healthz_503(tmp_path):
    code = (
        SETUP
        + "; from django.test import Client; r = Client().get('/healthz')"
        + "; print(r.status_code, r.json()['checks']['database']['ok'])"
    )
    result = _run(code, DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere", LEPTON_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["503", "False"]


@pytest.mark.parametrize(
    "helper, value, expected",
    [("env_bool", "yes", True), ("env_bool", "0", False), ("env_int", "42", 42), ("env_list", "a, b,,c", ["a", "b", "c"])],
)
def test_env_helpers_parse(monkeypatch, helper, value, expected):
    monkeypatch.setenv("LEPTON_TEST_VALUE", value)
    default = {"env_bool": False, "env_int": 0, "env_list": None}[helper]
    assert getattr(lepton_settings, helper)("LEPTON_TEST_VALUE", default) == expected


def test_env_helpers_reject_nonsense_with_the_variable_name(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv("LEPTON_TEST_VALUE", "lots")
    with pytest.raises(ImproperlyConfigured, match="LEPTON_TEST_VALUE"):
        lepton_settings.env_int("LEPTON_TEST_VALUE", 1)
    with pytest.raises(ImproperlyConfigured, match="LEPTON_TEST_VALUE"):
        lepton_settings.env_bool("LEPTON_TEST_VALUE")
