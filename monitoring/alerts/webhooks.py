"""Webhook URLs, signatures and one POST (no Django models here; monitoring.alerts.services drives them).

A receiver verifies a body with the rule's secret:
    hmac.compare_digest(request.headers["X-Lepton-Signature"],
                        "sha256=" + hmac.new(secret, f"{timestamp}.".encode() + body, sha256).hexdigest())
where `timestamp` is the X-Lepton-Timestamp header (seconds since the epoch), so an old body
cannot be replayed with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from lepton.netguard import address_problem

SIGNATURE_HEADER = "X-Lepton-Signature"
TIMESTAMP_HEADER = "X-Lepton-Timestamp"
EVENT_HEADER = "X-Lepton-Event"
DELIVERY_HEADER = "X-Lepton-Delivery"


def url_problem(url: str, allowed_hosts: list[str]) -> str | None:
    """Why `url` may not receive webhooks (a plain-English code), or None.

    `allowed_hosts` entries match a host exactly, or with a leading dot the host and its
    subdomains (".example.com"), like Django's ALLOWED_HOSTS; "*" allows any host.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "malformed"
    if parts.scheme not in ("http", "https"):
        return "scheme"
    if not host:
        return "malformed"
    if parts.username or parts.password:
        return "credentials"
    for allowed in (h.strip().lower() for h in allowed_hosts):
        if allowed == "*" or allowed == host or (allowed.startswith(".") and (host == allowed[1:] or host.endswith(allowed))):
            # Even an allowed name must not lead to a metadata or link-local address (lepton/netguard.py).
            return "address" if address_problem(host) else None
    return "host"


def encode(body: dict) -> bytes:
    """The exact bytes sent (and signed): compact JSON with sorted keys."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead outside the allow-list: it counts as a failed attempt."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def post(url: str, payload: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """POST `payload` once; ok for a 2xx answer. Never raises for network or HTTP errors."""
    request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json", **headers})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        return Outcome(False, exc.code, f"HTTP {exc.code} {exc.reason}"[:500])
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(False, None, f"{type(exc).__name__}: {reason}"[:500])
    if 200 <= code < 300:
        return Outcome(True, code, "")
    return Outcome(False, code, f"HTTP {code}")
