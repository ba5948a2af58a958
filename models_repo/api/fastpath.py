"""The predict endpoint's fast path: a WSGI layer in front of Django for callers it already knows.

Why: a prediction from a converted forest takes under a millisecond, while Django's
middleware, DRF, token authentication, the policy and the alias lookup cost ten times that
per request (docs/benchmarks.md, "serving"). This layer answers the repeat request — the
same token, model and `?alias=`/`?version=`/`?variant=` that the full view (PredictView)
already answered in this process — with what that view would answer, without them:

- the full view remembers a grant after each success (`remember`): the token, the model and
  version it resolved, the generation of lepton.counters it read before authenticating, and
  a deadline (the token's expiry, the end of a share that grants `use`, and at most
  LEPTON_PREDICT_GRANT_SECONDS);
- here, one Redis round trip counts the request against the token's rate limit (the same
  windows the API's throttle counts) and reads the generation: any committed change to
  tokens, people, memberships, shares, departments, models, versions or aliases has moved
  it on, and the grant is dropped;
- the body is checked by the same functions as in the view (`_matrix_frame`, `_rows`,
  `_table`) and predicted by the same `predict_inputs` (sampled logs included).

Everything else goes to Django untouched — a first request, anything a grant does not cover,
multipart bodies, images and windows, and every refusal (bad input, throttled, a stale
grant) — so every error a client sees comes from the one view. A request handed on keeps
its body, and says it was already counted (lepton.api.throttling.COUNTED).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qs

from django.conf import settings
from django.db import close_old_connections
from django.http.cookie import parse_cookie
from django.http.request import split_domain_port, validate_host
from django.utils import translation
from prometheus_client import Counter
from rest_framework.renderers import JSONRenderer

from lepton import counters, policy
from lepton.api.throttling import COUNTED, TokenRateThrottle
from lepton.errors import ServiceError

logger = logging.getLogger("lepton.serving")
PATH = re.compile(r"^/api/v1/models/([-a-zA-Z0-9_]+)/([-a-zA-Z0-9_]+)/predict$")
GENERATION = "lepton.generation"  # WSGI environ: the access generation read before Django authenticated
QUERY_KEYS = {"alias", "version", "variant"}
JSON_TYPES = {"application/json", "application/json;charset=utf-8"}
SERVED = Counter("lepton_predict_fast_served", "Predictions answered by the fast path.")
PASSED = Counter("lepton_predict_fast_passed", "Predict requests the fast path handed to Django, by reason.", ["reason"])
_renderer = JSONRenderer()


@dataclass
class Grant:
    """What the full view found for one token, model and query string, and until when it holds."""

    generation: int
    deadline: float  # time.time()
    token_id: int
    last_used: float  # the token's last_used_at, as the full view left it
    registered: object  # RegisteredModel
    version: object  # ModelVersion
    alias: str
    variant: str
    model_name: str  # "<department>/<model>", as answers name it


class Grants:
    """This process's grants, least recently used dropped first."""

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self.lock = threading.Lock()
        self.items: OrderedDict[tuple, Grant] = OrderedDict()

    def get(self, key: tuple) -> Grant | None:
        with self.lock:
            grant = self.items.get(key)
            if grant is not None:
                self.items.move_to_end(key)
            return grant

    def put(self, key: tuple, grant: Grant) -> None:
        with self.lock:
            self.items[key] = grant
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)

    def drop(self, key: tuple) -> None:
        with self.lock:
            self.items.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


grants = Grants()


def _bearer(environ_or_meta) -> str | None:
    parts = environ_or_meta.get("HTTP_AUTHORIZATION", "").split()
    return parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else None


def _key(secret: str, department: str, model: str, query: str) -> tuple:
    return hashlib.sha256(secret.encode()).digest(), department, model, query


def _plain_query(query: str) -> bool:
    """Only ?alias=, ?version=, ?variant=, each at most once: anything else is the full view's to read."""
    if not query:
        return True
    try:
        parsed = parse_qs(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return False
    return set(parsed) <= QUERY_KEYS and all(len(v) == 1 for v in parsed.values())


def remember(request, registered, version, alias: str, variant: str) -> None:
    """After the full view answered a JSON prediction: let the fast path answer the next ones."""
    generation = request.META.get(GENERATION)
    secret = _bearer(request.META)
    token = request.auth
    query = request.META.get("QUERY_STRING", "")
    if generation is None or secret is None or getattr(token, "pk", None) is None or not _plain_query(query):
        return  # not through the fast layer (the test client, runserver without it), or not a token
    now = time.time()
    ends = [now + settings.LEPTON_PREDICT_GRANT_SECONDS]
    if token.expires_at is not None:
        ends.append(token.expires_at.timestamp())
    until = policy.allowed_until(request.user, "use", registered)
    if until is not None:
        ends.append(until.timestamp())
    department, model = request.parser_context["kwargs"]["department"], request.parser_context["kwargs"]["model"]
    grants.put(
        _key(secret, department, model, query),
        Grant(
            generation=int(generation), deadline=min(ends), token_id=token.pk,
            last_used=token.last_used_at.timestamp() if token.last_used_at else now,
            registered=registered, version=version, alias=alias, variant=variant,
            model_name=f"{registered.department.slug}/{registered.slug}",
        ),
    )  # fmt: skip


_languages: dict[tuple[str, str], str] = {}


class _LanguageProbe:
    """What Django's LocaleMiddleware reads of a request to choose its language."""

    path_info = "/api/"

    def __init__(self, environ):
        self.META = environ
        self.COOKIES = parse_cookie(environ.get("HTTP_COOKIE", ""))


def _language(environ) -> str:
    """The Content-Language LocaleMiddleware would send (no message is translated in an answer)."""
    key = (environ.get("HTTP_ACCEPT_LANGUAGE", ""), environ.get("HTTP_COOKIE", ""))
    language = _languages.get(key)
    if language is None:
        language = translation.get_language_from_request(_LanguageProbe(environ))
        if len(_languages) < 1024:
            _languages[key] = language
    return language


def _headers(length: int, secure: bool, language: str) -> list[tuple[str, str]]:
    """The headers Django's middleware and DRF put on the full view's answer (tests compare them)."""
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(length)),
        ("Vary", "Accept, Accept-Language"),
        ("Allow", "POST, OPTIONS"),
        ("Content-Language", language),
    ]
    if settings.X_FRAME_OPTIONS:
        headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy_value = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy", policy_value if isinstance(policy_value, str) else ",".join(policy_value)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    if secure and settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append(("Strict-Transport-Security", value))
    return headers


def _secure(environ) -> bool:
    if settings.SECURE_PROXY_SSL_HEADER:
        header, value = settings.SECURE_PROXY_SSL_HEADER
        return environ.get(header, "").split(",")[0].strip() == value
    return environ.get("wsgi.url_scheme") == "https"


def _host_allowed(environ) -> bool:
    if settings.USE_X_FORWARDED_HOST or settings.USE_X_FORWARDED_PORT:
        return False  # Django's own reading of the host applies: hand on
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


class PredictFastPath:
    """WSGI middleware (lepton.wsgi wraps Django's application with it when LEPTON_PREDICT_FAST_PATH is on)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        match = PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return self.app(environ, start_response)
        try:
            answer = self._answer(environ, match.group(1), match.group(2))
        except Exception:  # a fault of this layer must never cost the caller an answer: Django gives it
            logger.exception("predict fast path failed; the request goes to Django")
            PASSED.labels("fault").inc()
            answer = None
        finally:
            close_old_connections()  # as Django does after a request: the log buffer or last use wrote
        if answer is None:
            return self.app(environ, start_response)
        body, secure = answer
        start_response("200 OK", _headers(len(body), secure, _language(environ)))
        return [body]

    def _pass(self, environ, reason: str):
        PASSED.labels(reason).inc()
        return None

    def _answer(self, environ, department: str, model: str) -> tuple[bytes, bool] | None:
        secret = _bearer(environ)
        query = environ.get("QUERY_STRING", "")
        if secret is None or environ.get("CONTENT_TYPE", "").lower().replace(" ", "") not in JSON_TYPES:
            return self._pass(environ, "not_json_with_token")
        grant_key = _key(secret, department, model, query)
        grant = grants.get(grant_key)
        if grant is None or grant.deadline <= time.time():
            if grant is not None:
                grants.drop(grant_key)
            environ[GENERATION] = counters.generation_current()
            return self._pass(environ, "no_grant")
        secure = _secure(environ)
        if not _host_allowed(environ) or (settings.SECURE_SSL_REDIRECT and not secure):
            return self._pass(environ, "host_or_scheme")
        rate = TokenRateThrottle().rate  # read per request, as DRF does: settings may change it
        if rate is None:
            wait, generation = None, counters.generation_current()
        else:
            wait, generation = counters.rate_hit(f"token:{grant.token_id}", rate, with_generation=True)
        environ[COUNTED] = "" if wait is None else f"{wait:.3f}"
        environ[GENERATION] = generation
        if generation != grant.generation:
            grants.drop(grant_key)
            return self._pass(environ, "changed")
        if wait is not None:
            return self._pass(environ, "throttled")
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length < 0 or (limit is not None and length > limit):
            return self._pass(environ, "body_size")
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Django reads it again if this layer hands the request on
        answer = self._predict(grant, body)
        if answer is None:
            return self._pass(environ, "input")
        self._touch(grant)
        SERVED.inc()
        return answer, secure

    @staticmethod
    def _predict(grant: Grant, body: bytes) -> bytes | None:
        from models_repo.api import predict

        started = time.perf_counter()
        try:  # as DRF's JSONParser reads it: UTF-8, and no NaN or Infinity (strict JSON)
            data = json.loads(body.decode("utf-8"), parse_constant=_not_json)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError too
            return None
        version = grant.version
        try:
            frame, ignored = predict.table_from_body(data, version.input_schema)
            result = predict.predict_inputs(
                grant.registered, version, frame, started=started, source="api", variant=grant.variant
            )
        except ServiceError:  # bad input, a model that cannot load: the full view says why
            return None
        payload = {"model": grant.model_name, "version": version.number, **result}
        if grant.alias:
            payload["alias"] = grant.alias
        if ignored:
            payload["ignored_columns"] = ignored
        return _renderer.render(payload)

    @staticmethod
    def _touch(grant: Grant) -> None:
        now = time.time()
        if now - grant.last_used > 60:  # as token_authenticate: written at most once a minute per token
            from lepton.services import token_seen

            token_seen(grant.token_id)
            grant.last_used = now
