"""Hardening: production settings (check --deploy), security headers and the CSP, password
validators, the admin login's throttle, the request size limit, the SSRF guard."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from datalake import services as datalake_services
from datalake.models import DatabaseImport, DatasetVersion
from lepton.middleware import max_request_bytes
from lepton.models import AuditEvent
from lepton.netguard import address_problem
from monitoring.alerts import webhooks

ROOT = Path(__file__).resolve().parents[2]


def _production_env(**extra):
    # The test process's own switches (DJANGO_ALLOW_ASYNC_UNSAFE for the live-server tests) are not
    # part of a deployment: check --deploy rightly refuses them (async.E001).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SECURE_", "SESSION_", "CSRF_")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="lepton.example.com", **extra)
    return env


def test_check_deploy_is_clean_under_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_defaults_are_https_only():
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ('SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_production_env(DJANGO_SETTINGS_MODULE="lepton.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
    }


def test_pages_carry_the_csp_and_security_headers(client, db):
    response = client.get("/accounts/login/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_no_template_has_an_inline_script():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        for line in path.read_text().splitlines():
            if "<script" in line and "src=" not in line:
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
            if " onclick=" in line or " onload=" in line or " onchange=" in line or "javascript:" in line:
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not offenders


def test_https_redirect_spares_health_checks(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/accounts/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert client.get("/healthz").status_code in (200, 503)


def test_api_docs_page_has_no_inline_script(client, member):
    client.force_login(member)
    page = client.get("/api/docs/").content.decode()
    assert "<script>" not in page and "?script" in page
    script = client.get("/api/docs/?script")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")


def test_password_validators_refuse_short_common_and_numeric_passwords(db):
    for weak in ("short", "password1234", "123456789012"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Xy7!kq")
    validate_password("mauve-lantern-orbit-42")


def test_admin_login_is_throttled_and_the_lockout_audited(client, staff, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        response = client.post("/admin/login/", {"username": staff.username, "password": "wrong"})
        assert response.status_code == 200
    response = client.post("/admin/login/", {"username": staff.username, "password": "password"})
    assert "Too many failed attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = AuditEvent.objects.get(action="login.locked")
    assert event.changes["username"] == staff.username and event.department is None


def test_site_login_lockout_is_audited(client, member, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post("/accounts/login/", {"username": member.username, "password": "wrong"})
    assert AuditEvent.objects.filter(action="login.locked", changes__username=member.username).count() == 1


def test_an_oversize_request_is_refused_before_it_is_read(member, production, settings):
    settings.LEPTON_MAX_UPLOAD_BYTES = 1000
    settings.LEPTON_MODEL_UPLOAD_MAX_BYTES = 1000
    settings.LEPTON_MAX_CHUNK_BYTES = 100
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Sensors")
    client = APIClient()
    client.force_authenticate(member)
    too_big = str(max_request_bytes() + 1)
    response = client.post(f"/api/v1/datasets/{dataset.pk}/upload/", {"file": b"x"}, CONTENT_LENGTH=too_big)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "uploads may have at most" in response.json()["detail"]
    browser = client.post(f"/data/{dataset.pk}/upload/", {}, CONTENT_LENGTH=too_big)
    assert browser.status_code == 413 and "uploads may have at most" in browser.content.decode()
    assert not DatasetVersion.objects.exists()


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("[fe80::1]", True),
        ("::ffff:169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("10.1.2.3", False),
        ("127.0.0.1", False),
        ("localhost", False),
        ("no-such-host.invalid", False),
    ],
)
def test_the_ssrf_guard(host, refused):
    assert bool(address_problem(host)) is refused


def test_a_webhook_to_a_metadata_address_is_refused_even_when_any_host_is_allowed(owner, production, settings):
    from lepton.errors import Invalid
    from monitoring.alerts import services
    from monitoring.alerts.models import AlertRule

    assert webhooks.url_problem("http://169.254.169.254/latest/meta-data/", ["*"]) == "address"
    settings.LEPTON_WEBHOOK_ALLOWED_HOSTS = ["*"]
    with pytest.raises(Invalid) as error:
        services.rule_create(
            actor=owner, department=production, name="F", kind="job_failed", webhook_url="http://169.254.169.254/x"
        )
    assert "link-local or reserved address" in error.value.fields["webhook_url"][0]
    assert not AlertRule.objects.exists()


def test_a_database_import_to_a_metadata_address_is_refused(owner, member, production):
    dataset = datalake_services.dataset_create(actor=member, department=production, name="Batches")
    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(
        f"/api/v1/datasets/{dataset.pk}/import/",
        {"url": "postgresql://reader:pw@169.254.169.254:5432/mes", "query": "select 1"},
        format="json",
    )
    assert response.status_code == 400
    assert "link-local or reserved address" in response.json()["fields"]["url"][0]
    assert not DatabaseImport.objects.exists()
