"""Single sign-on with an OpenID Connect provider: the authorization-code flow with PKCE.

1. `oidc_login` (/auth/oidc/login/) reads the provider's discovery document
   (`<LEPTON_OIDC_ISSUER>/.well-known/openid-configuration`, cached), keeps a fresh `state`,
   `nonce` and PKCE verifier in the session and sends the browser to the provider.
2. The provider sends it back to `oidc_callback` (/auth/oidc/callback/) with a code. The
   state must be one this session started (not too long ago, used once); the code is
   exchanged for tokens at the token endpoint (with the PKCE verifier and the client
   secret); the ID token is verified with PyJWT against the provider's published keys
   (JWKS): RS256 signature, `iss`, `aud`, `exp`, and the `nonce` of this sign-in. The
   person's groups come from the ID token, else from the userinfo endpoint.
3. `lepton.services.external_login` finds the user by (issuer, subject) or creates one,
   and brings the memberships the provider manages in line with LEPTON_OIDC_GROUP_MAP.

Every failure ends on the login page with a message saying what went wrong and that nobody
was signed in. A token that fails verification is written to the audit log
(`login.sso_failed`); a stray callback without a state this session started is only logged,
since anyone can send one.

Local accounts keep working beside this (small installs, break-glass admins).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from lepton import audit, services
from lepton.errors import ServiceError
from lepton.models import ROLE_RANK, Role

logger = logging.getLogger(__name__)

SESSION_KEY = "lepton_oidc_pending"
# Sign-ins one session may have started and not finished (several tabs); the oldest go first.
PENDING_MAX = 5
# A sign-in must come back from the provider within this many seconds.
PENDING_SECONDS = 600
# How long the discovery document and the keys are cached; an unknown key id fetches the
# keys again at once (the provider rotated them).
DISCOVERY_SECONDS = 3600
ALGORITHMS = ["RS256"]
# Clock difference tolerated between the provider and this server (exp, iat).
LEEWAY_SECONDS = 60
SCOPES = "openid profile email"
BACKEND = "django.contrib.auth.backends.ModelBackend"


class OidcError(Exception):
    """A sign-in that cannot go on. `message` is safe to show; `code` names the reason in the
    log and the audit log; `audited` when the provider's answer itself failed verification."""

    def __init__(self, message: str, code: str, *, audited: bool = False, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code
        self.audited = audited
        self.detail = detail


class GroupMapError(ValueError):
    """LEPTON_OIDC_GROUP_MAP cannot be read (reported by the system checks, lepton/checks.py)."""


@dataclass(frozen=True)
class GroupRule:
    """Members of `group` at the provider get `role` in the department `department` (a slug)."""

    group: str
    department: str
    role: str


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    groups_claim: str
    rules: tuple[GroupRule, ...]
    sync: bool
    timeout: float


# --- configuration -------------------------------------------------------------------------


def parse_group_map(text: str) -> list[GroupRule]:
    """The rules of LEPTON_OIDC_GROUP_MAP.

    Either `group=department:role` items separated by commas
    ("quality-engineers=quality:member,maint-leads=maintenance:maintainer"), or, for group
    names with commas (LDAP DNs), a JSON object {"group": "department:role"} whose values may
    also be lists. A group may map to several departments. Raises GroupMapError naming the
    bad item. Whether the departments exist is checked against the database separately.
    """
    text = (text or "").strip()
    if not text:
        return []
    pairs: list[tuple[str, object]] = []
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GroupMapError(f"LEPTON_OIDC_GROUP_MAP is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise GroupMapError('LEPTON_OIDC_GROUP_MAP as JSON must be an object: {"group": "department:role"}.')
        for group, targets in data.items():
            for target in targets if isinstance(targets, list) else [targets]:
                pairs.append((group, target))
    else:
        for item in text.split(","):
            item = item.strip()
            if not item:
                continue
            group, sep, target = item.rpartition("=")
            if not sep or not group.strip():
                raise GroupMapError(
                    f"LEPTON_OIDC_GROUP_MAP item {item!r} is not of the form group=department:role "
                    "(e.g. quality-engineers=quality:member)."
                )
            pairs.append((group.strip(), target.strip()))
    rules = []
    for group, target in pairs:
        if not isinstance(target, str) or target.count(":") != 1:
            raise GroupMapError(
                f"LEPTON_OIDC_GROUP_MAP maps group {group!r} to {target!r}; expected department:role (e.g. quality:member)."
            )
        department, role = (part.strip() for part in target.split(":"))
        if not group.strip() or not department:
            raise GroupMapError(f"LEPTON_OIDC_GROUP_MAP item {group!r}={target!r} lacks a group or a department.")
        if role not in Role.values:
            raise GroupMapError(
                f"LEPTON_OIDC_GROUP_MAP maps group {group!r} to the unknown role {role!r}; use one of: {', '.join(Role.values)}."
            )
        rules.append(GroupRule(group=group.strip(), department=department, role=role))
    return rules


def provider() -> Provider | None:
    """The configured provider, or None when single sign-on is off (no issuer or client id).

    Raises GroupMapError for an unreadable group map: then nobody may sign in through the
    provider, because who gets which role would be a guess.
    """
    if not (settings.LEPTON_OIDC_ISSUER and settings.LEPTON_OIDC_CLIENT_ID):
        return None
    return Provider(
        issuer=settings.LEPTON_OIDC_ISSUER,
        client_id=settings.LEPTON_OIDC_CLIENT_ID,
        client_secret=settings.LEPTON_OIDC_CLIENT_SECRET,
        name=settings.LEPTON_OIDC_NAME or "single sign-on",
        groups_claim=settings.LEPTON_OIDC_GROUPS_CLAIM or "groups",
        rules=tuple(parse_group_map(settings.LEPTON_OIDC_GROUP_MAP)),
        sync=settings.LEPTON_OIDC_SYNC,
        timeout=settings.LEPTON_OIDC_TIMEOUT_SECONDS,
    )


def provider_name() -> str | None:
    """The name for the login page's button, or None when single sign-on is off."""
    if not (settings.LEPTON_OIDC_ISSUER and settings.LEPTON_OIDC_CLIENT_ID):
        return None
    return settings.LEPTON_OIDC_NAME or "single sign-on"


def groups_from(claims: dict, claim: str) -> list[str] | None:
    """The groups in `claims` under `claim` (a dotted path reaches nested objects); None when absent."""
    value = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, (str, int))]
    return []


def roles_for(groups: list[str], rules) -> dict[str, str]:
    """{department slug: role} for these groups: the highest role when several groups name a department."""
    roles: dict[str, str] = {}
    members = set(groups)
    for rule in rules:
        if rule.group in members:
            current = roles.get(rule.department)
            if current is None or ROLE_RANK[rule.role] > ROLE_RANK[current]:
                roles[rule.department] = rule.role
    return roles


# --- talking to the provider ---------------------------------------------------------------


def _unreachable(p: Provider, detail: str) -> OidcError:
    return OidcError(
        _("%(provider)s cannot be reached right now, so nobody was signed in. Try again later, or log in with a Lepton account.")
        % {"provider": p.name},
        "provider_unreachable",
        detail=detail,
    )


def _get_json(p: Provider, url: str, *, what: str, headers: dict | None = None) -> dict:
    try:
        response = requests.get(url, timeout=p.timeout, headers={"Accept": "application/json", **(headers or {})})
    except requests.RequestException as exc:
        raise _unreachable(p, f"{what} {url}: {exc}") from None
    if response.status_code != 200:
        raise _unreachable(p, f"{what} {url} answered {response.status_code}")
    try:
        data = response.json()
    except ValueError:
        raise _unreachable(p, f"{what} {url} answered no JSON") from None
    if not isinstance(data, dict):
        raise _unreachable(p, f"{what} {url} answered no JSON object")
    return data


def _cache_key(kind: str, p: Provider) -> str:
    return f"lepton:oidc:{kind}:{hashlib.sha256(p.issuer.encode()).hexdigest()[:32]}"


def discovery(p: Provider) -> dict:
    """The provider's discovery document (cached), checked to name this issuer and the endpoints we use."""
    key = _cache_key("discovery", p)
    meta = cache.get(key)
    if meta is not None:
        return meta
    url = p.issuer.rstrip("/") + "/.well-known/openid-configuration"
    meta = _get_json(p, url, what="discovery")
    # The document must speak for the configured issuer (OpenID Connect Discovery §4.3); a
    # trailing slash is the only difference tolerated.
    if str(meta.get("issuer", "")).rstrip("/") != p.issuer.rstrip("/"):
        raise _unreachable(p, f"discovery names issuer {meta.get('issuer')!r}, not {p.issuer!r}")
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not str(meta.get(field, "")).startswith(("https://", "http://")):
            raise _unreachable(p, f"discovery lacks {field}")
    cache.set(key, meta, DISCOVERY_SECONDS)
    return meta


def _keys(p: Provider, meta: dict, *, refresh: bool = False) -> dict:
    key = _cache_key("jwks", p)
    jwks = None if refresh else cache.get(key)
    if jwks is None:
        jwks = _get_json(p, meta["jwks_uri"], what="keys")
        cache.set(key, jwks, DISCOVERY_SECONDS)
    return jwks


def _signing_key(jwks: dict, kid: str | None):
    """The verification key for `kid` from a JWKS, or None. Without a kid, the only RSA signing key."""
    candidates = []
    for entry in jwks.get("keys") or []:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
            continue
        if kid is not None and entry.get("kid") != kid:
            continue
        try:
            candidates.append(jwt.PyJWK(entry, algorithm="RS256").key)
        except jwt.PyJWTError:
            continue
    return candidates[0] if len(candidates) == 1 else None


def _untrusted(p: Provider, code: str, detail: str = "") -> OidcError:
    reasons = {
        "expired": _("the sign-in token has expired"),
        "wrong_audience": _("the token was issued for another application"),
        "wrong_issuer": _("the token was issued by another provider"),
        "bad_nonce": _("the token does not belong to this sign-in"),
        "bad_signature": _("the token's signature could not be verified"),
    }
    reason = reasons.get(code, _("the token is not valid"))
    return OidcError(
        _(
            "The answer from %(provider)s could not be trusted (%(reason)s), so nobody was signed in. "
            "Start again; if it keeps happening, tell your administrator."
        )
        % {"provider": p.name, "reason": reason},
        code,
        audited=True,
        detail=detail,
    )


def verify_id_token(p: Provider, meta: dict, token: str, *, nonce: str) -> dict:
    """The claims of an ID token after checking its RS256 signature against the provider's
    keys, its issuer, audience, expiry and the nonce of this sign-in; OidcError otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _untrusted(p, "malformed", str(exc)) from None
    if header.get("alg") not in ALGORITHMS:
        # Never "none", never HS256 with the public key as the secret.
        raise _untrusted(p, "bad_signature", f"algorithm {header.get('alg')!r}")
    kid = header.get("kid")
    key = _signing_key(_keys(p, meta), kid)
    if key is None:
        key = _signing_key(_keys(p, meta, refresh=True), kid)
    if key is None:
        raise _untrusted(p, "bad_signature", f"no signing key {kid!r} in the provider's keys")
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=ALGORITHMS,
            audience=p.client_id,
            issuer=meta["issuer"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _untrusted(p, "expired", str(exc)) from None
    except jwt.InvalidAudienceError as exc:
        raise _untrusted(p, "wrong_audience", str(exc)) from None
    except jwt.InvalidIssuerError as exc:
        raise _untrusted(p, "wrong_issuer", str(exc)) from None
    except jwt.InvalidSignatureError as exc:
        raise _untrusted(p, "bad_signature", str(exc)) from None
    except jwt.PyJWTError as exc:
        raise _untrusted(p, "invalid", str(exc)) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != p.client_id:
        raise _untrusted(p, "wrong_audience", f"azp {claims.get('azp')!r} with audiences {audiences}")
    if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
        raise _untrusted(p, "bad_nonce", "nonce differs from this sign-in's")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _untrusted(p, "invalid", "empty sub")
    return claims


def _pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _redirect_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("oidc_callback"))


def begin(request: HttpRequest, p: Provider, next_url: str) -> str:
    """Remember a new sign-in in the session; the provider's authorization URL to send the browser to."""
    meta = discovery(p)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    now = time.time()
    pending = {s: e for s, e in (request.session.get(SESSION_KEY) or {}).items() if now - e["at"] < PENDING_SECONDS}
    for old in sorted(pending, key=lambda s: pending[s]["at"])[: max(0, len(pending) - PENDING_MAX + 1)]:
        del pending[old]
    pending[state] = {"nonce": nonce, "verifier": verifier, "next": next_url, "at": now}
    request.session[SESSION_KEY] = pending
    params = {
        "response_type": "code",
        "client_id": p.client_id,
        "redirect_uri": _redirect_uri(request),
        "scope": SCOPES,
        "state": state,
        "nonce": nonce,
        "code_challenge": _pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    endpoint = meta["authorization_endpoint"]
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)


def _exchange(request: HttpRequest, p: Provider, meta: dict, code: str, verifier: str) -> dict:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": _redirect_uri(request), "code_verifier": verifier}
    auth = None
    if p.client_secret:
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in methods:
            # RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
            auth = (quote(p.client_id, safe=""), quote(p.client_secret, safe=""))
        else:
            data.update(client_id=p.client_id, client_secret=p.client_secret)
    else:
        data["client_id"] = p.client_id
    try:
        response = requests.post(
            meta["token_endpoint"], data=data, auth=auth, timeout=p.timeout, headers={"Accept": "application/json"}
        )
    except requests.RequestException as exc:
        raise _unreachable(p, f"token endpoint: {exc}") from None
    try:
        tokens = response.json()
    except ValueError:
        tokens = {}
    if response.status_code != 200 or not isinstance(tokens, dict) or not tokens.get("id_token"):
        reason = str(tokens.get("error_description") or tokens.get("error") or response.status_code)[:200]
        raise OidcError(
            _("%(provider)s refused to complete the sign-in (%(reason)s), so nobody was signed in. Start again.")
            % {"provider": p.name, "reason": reason},
            "token_refused",
            detail=f"token endpoint answered {response.status_code}: {reason}",
        )
    return tokens


def finish(request: HttpRequest, p: Provider) -> tuple[dict, str]:
    """Check the provider's answer to a sign-in this session started; (verified claims, where to go next)."""
    state = request.GET.get("state", "")
    pending = request.session.get(SESSION_KEY) or {}
    entry = pending.pop(state, None) if state else None
    if entry is not None:
        request.session[SESSION_KEY] = pending  # used once, whatever happens next
    if entry is None or time.time() - entry["at"] >= PENDING_SECONDS:
        # Also for error= answers: without our state the provider's text could be anyone's.
        raise OidcError(
            _(
                "This sign-in could not be completed: it was started in another browser, took too long, "
                "or was already used. Nobody was signed in; start again."
            ),
            "bad_state",
        )
    if request.GET.get("error"):
        reason = (request.GET.get("error_description") or request.GET.get("error"))[:200]
        raise OidcError(
            _("%(provider)s did not sign you in (%(reason)s). Nobody was signed in.") % {"provider": p.name, "reason": reason},
            "provider_error",
            detail=reason,
        )
    code = request.GET.get("code", "")
    if not code:
        raise OidcError(
            _("%(provider)s sent no sign-in code, so nobody was signed in. Start again.") % {"provider": p.name}, "no_code"
        )
    meta = discovery(p)
    tokens = _exchange(request, p, meta, code, entry["verifier"])
    claims = verify_id_token(p, meta, tokens["id_token"], nonce=entry["nonce"])
    if groups_from(claims, p.groups_claim) is None and meta.get("userinfo_endpoint") and tokens.get("access_token"):
        info = _get_json(
            p, meta["userinfo_endpoint"], what="userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        # OpenID Connect Core §5.3.2: userinfo about someone else must not be used.
        if info.get("sub") != claims["sub"]:
            raise _untrusted(p, "invalid", "userinfo sub differs from the ID token's")
        claims = {**info, **claims}
    return claims, entry["next"]


# --- views ---------------------------------------------------------------------------------


def _safe_next(request: HttpRequest) -> str:
    target = request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return ""


def _failed(request: HttpRequest, p: Provider | None, exc: OidcError) -> HttpResponse:
    logger.warning("OIDC sign-in failed (%s): %s", exc.code, exc.detail or exc.message)
    if exc.audited and p is not None:
        with transaction.atomic():
            audit.record(
                actor=None,
                action="login.sso_failed",
                object_repr=p.issuer,
                changes={"issuer": p.issuer, "reason": exc.code, "detail": exc.detail[:300]},
            )
    messages.error(request, exc.message)
    return redirect("login")


def _configured() -> Provider:
    try:
        p = provider()
    except GroupMapError as exc:
        # The system check says the same (lepton.E011); refuse rather than guess roles.
        logger.error("OIDC sign-in refused: %s", exc)
        raise OidcError(
            _("Single sign-on is not configured correctly, so nobody was signed in. Tell your administrator."),
            "misconfigured",
        ) from None
    if p is None:
        raise OidcError(_("Single sign-on is not set up here; log in with your Lepton account."), "not_configured")
    return p


@never_cache
@require_GET
def oidc_login(request: HttpRequest) -> HttpResponse:
    """Start a sign-in at the provider (a link on the login page; ?next= is kept for afterwards)."""
    try:
        p = _configured()
        return HttpResponseRedirect(begin(request, p, _safe_next(request)))
    except OidcError as exc:
        return _failed(request, None, exc)


@never_cache
@require_GET
def oidc_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the browser back: verify, find or create the user, sign them in."""
    p = None
    try:
        p = _configured()
        claims, next_url = finish(request, p)
        groups = groups_from(claims, p.groups_claim) or []
        result = services.external_login(
            issuer=claims["iss"],
            subject=claims["sub"],
            claims=claims,
            groups=groups,
            roles=roles_for(groups, p.rules),
            sync=p.sync,
        )
    except OidcError as exc:
        return _failed(request, p, exc)
    except ServiceError as exc:  # a disabled account, a race between two tabs
        return _failed(request, p, OidcError(exc.message, exc.code))
    auth_login(request, result.user, backend=BACKEND)
    if result.missing_departments:
        logger.error("LEPTON_OIDC_GROUP_MAP names departments that do not exist: %s", ", ".join(result.missing_departments))
    if result.kept_last_admin:
        logger.warning(
            "OIDC sign-in of %s kept the last admin role in: %s", result.user.get_username(), ", ".join(result.kept_last_admin)
        )
    if not result.has_access:
        messages.warning(
            request,
            _(
                "You are signed in as %(username)s, but you have no access to any department yet: none of your "
                "groups at %(provider)s is linked to a Lepton department. Ask an admin of your department to add "
                "you, or ask your IT team to put you in your department's group."
            )
            % {"username": result.user.get_username(), "provider": p.name},
        )
    return redirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))
