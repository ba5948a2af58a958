"""The access matrix: every route the URL resolver knows, as an anonymous visitor and as an outsider.

Routes are read from the resolver at collection time, so a new route is checked without
anyone adding it here. Its path parameters are filled with real objects of Production
(`world`), by the words before the parameter (`PARAMETERS`); a route with a parameter no rule
knows fails `test_every_route_parameter_has_a_value`, so it cannot slip through unchecked.

- Anonymous: a browser route redirects to the login page, an API route answers 401, the admin
  redirects to its login; anything else must be on `PUBLIC` with the reason.
- Outsider (a member of Quality only): a route naming a Production object answers 403, 404 or
  405, the admin redirects to its login; a route without one may answer (its own lists, a form
  error), but no response ever holds Production's data (`MARK` is in every name of `world`)
  and nothing of Production changes (no audit event is written for it).
"""

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from datalake.models import Dataset, DatasetVersion, Recall, RecallImpact, Recipe, SavedQuery, UnmaskGrant, UploadSession
from lepton import services as core_services
from lepton.collab.models import AccessRequest
from lepton.jobs.models import Job
from lepton.models import AuditEvent, Department, Share
from models_repo.models import ModelAlias, ModelVersion, PromotionRequest, RegisteredModel, TrainingRun
from monitoring.alerts.models import Alert, AlertRule, Notification
from scheduling.models import ScheduleRun, ShopProblem

MARK = "zqsecretqz"

# Routes anyone may open, and why.
PUBLIC = {
    "healthz": "load balancers and container health checks; answers ok/failing, names no department",
    "set_language": "switches the interface language (a cookie); shows no data",
    "login": "the login page",
    "admin:login": "the admin's login page",
    "admin:logout": "logging out of the admin; shows no data",
    "oidc_login": "starts single sign-on at the identity provider (or says it is not set up); shows no data",
    "oidc_callback": "where the identity provider sends the browser back; signs in only with a verified ID token",
}

METHODS = ("get", "post", "put", "patch", "delete")


def _walk(resolver, prefix="", namespace=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else pattern.namespace or namespace
            yield from _walk(pattern, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name or ""
            yield prefix + str(pattern.pattern), name


ROUTES = sorted(set(_walk(get_resolver())))
_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>[^)]*\)")


def _clean(text: str) -> str:
    """A route's text with the regex syntax taken out and parameters as X ("api/v1/datasets/X/versions/")."""
    return _PARAM.sub("X", text).replace("^", "").replace("$", "")


# What fills a parameter: (regex on the cleaned route text before it, parameter name or None for
# any, the key of `world` or a literal). The first match wins.
PARAMETERS = [
    (r"^admin/", None, "1"),
    (r"access/request/$", "object_type", "=datalake.dataset"),
    (r"access/request/X/$", "object_id", "dataset"),
    (r"access/$|access-requests/$", "pk", "access_request"),
    (r"shares/$", "pk", "share"),
    (r"recalls/impacts/$|recall-impacts/$", "pk", "recall_impact"),
    (r"recalls/$", "pk", "recall"),
    (r"unmask-grants/$", "pk", "unmask_grant"),
    (r"scheduling/runs/$|schedule-runs/$", "pk", "schedule_run"),
    (r"scheduling/problems/$|shop-problems/$", "pk", "problem"),
    (r"models/runs/$|v1/runs/$", "pk", "training_run"),
    (r"promotions/$", "pk", "promotion"),
    (r"promotions/X/$", "decision", "=approve"),
    (r"alerts/rules/$|alert-rules/$", "pk", "alert_rule"),
    (r"alerts/$", "pk", "alert"),
    (r"queries/$", "pk", "saved_query"),
    (r"recipes/$", "pk", "recipe"),
    (r"uploads/$", "pk", "upload"),
    (r"versions/$", "number", "=1"),
    (r"versions/$", None, "dataset_version"),
    (r"images/$", "sha256", "=" + "0" * 64),
    (r"aliases/$", "alias", "=production"),
    (r"v1/models/$", "department", "department_slug"),
    (r"v1/models/X/$", "model", "model_slug"),
    (r"data/$|trash/$|datasets/$", "pk", "dataset"),
    (r"models/$", "pk", "model"),
    (r"jobs/$", "pk", "job"),
    (r"tokens/$", "pk", "token"),
    (r"departments/$", None, "department_slug"),
    (r"members/$|memberships/$", "username", "username"),
]


def _value(route_before: str, name: str, world: dict):
    cleaned = _clean(route_before)
    for where, param, key in PARAMETERS:
        if (param is None or param == name) and re.search(where, cleaned):
            if key.startswith("=") or where == r"^admin/":
                return key.lstrip("=")
            return world[key]
    return None


def _url(route: str, world: dict) -> str | None:
    """The route with its parameters filled, or None when a parameter has no rule."""
    parts, pos = [], 0
    for match in _PARAM.finditer(route):
        name = match.group("name") or match.group("rname")
        value = _value(route[: match.start()], name, world)
        if value is None:
            return None
        parts.append(route[pos : match.start()])
        parts.append(str(value))
        pos = match.end()
    parts.append(route[pos:])
    return "/" + "".join(parts).replace("^", "").replace("$", "")


def _has_parameters(route: str) -> bool:
    return bool(_PARAM.search(route))


@pytest.fixture
def world(owner, member, production, settings):
    """One of each kind of Production's objects, every name holding MARK."""
    settings.METRICS_TOKEN = "matrix-metrics-token"
    dataset = Dataset.objects.create(department=production, slug=f"{MARK}-data", name=f"{MARK} dataset", created_by=member)
    version = DatasetVersion.objects.create(
        dataset=dataset, number=1, status="failed", original_filename=f"{MARK}.csv", created_by=member
    )
    output = Dataset.objects.create(department=production, slug=f"{MARK}-out", name=f"{MARK} output", created_by=member)
    recipe = Recipe.objects.create(department=production, name=f"{MARK} recipe", input_dataset=dataset, output_dataset=output)
    query = SavedQuery.objects.create(department=production, name=f"{MARK} query", sql=f"select '{MARK}'", created_by=member)
    upload = UploadSession.objects.create(dataset=dataset, created_by=member, filename=f"{MARK}.csv", total_bytes=10)
    model = RegisteredModel.objects.create(department=production, slug=f"{MARK}-model", name=f"{MARK} model", created_by=owner)
    run = TrainingRun.objects.create(department=production, name=f"{MARK} run", dataset_version=version, created_by=member)
    model_version = ModelVersion.objects.create(
        model=model, number=1, flavor="sklearn", task="classification", artifact_sha256="a" * 64, description=MARK
    )
    ModelAlias.objects.create(model=model, name="production", version=model_version)
    promotion = PromotionRequest.objects.create(model=model, version=model_version, reason=MARK, requested_by=member)
    problem = ShopProblem.objects.create(department=production, slug=f"{MARK}-shop", name=f"{MARK} problem", created_by=member)
    schedule = ScheduleRun.objects.create(department=production, problem=problem, method="spt", created_by=member)
    job = Job.objects.create(kind="test.noop", params={"note": MARK}, department=production, requested_by=member)
    rule = AlertRule.objects.create(department=production, name=f"{MARK} rule", kind="failed_job", created_by=owner)
    alert = Alert.objects.create(rule=rule, department=production, kind="failed_job", dedup_key=MARK, message=f"{MARK} alert")
    Notification.objects.create(user=member, alert=alert, message=f"{MARK} notification")
    token, _secret = core_services.token_create(actor=member, name=f"{MARK} token", scopes=["read"])
    core_services_audit_mark(member, production)
    # Another department's share of, and access request for, Production's dataset (the outsider is in Quality).
    maintenance = Department.objects.create(slug="maintenance", name="Maintenance")
    dataset_type = ContentType.objects.get_for_model(Dataset)
    share = Share.objects.create(
        content_type=dataset_type, object_id=str(dataset.pk), department=maintenance, purpose=MARK, granted_by=owner
    )
    access_request = AccessRequest.objects.create(
        content_type=dataset_type, object_id=str(dataset.pk), object_repr=f"{MARK} dataset", department=production,
        requester_department=maintenance, requested_by=owner, purpose=MARK,
    )  # fmt: skip
    recall = Recall.objects.create(version=version, reason=MARK, created_by=owner)
    impact = RecallImpact.objects.create(
        recall=recall, object_type="models_repo.modelversion", object_id=str(model_version.pk), department=production,
        label=f"{MARK} model v1", blocking=True,
    )  # fmt: skip
    return {
        "share": share.pk,
        "access_request": access_request.pk,
        "recall": recall.pk,
        "recall_impact": impact.pk,
        "dataset": dataset.pk,
        "dataset_version": version.pk,
        "recipe": recipe.pk,
        "saved_query": query.pk,
        "unmask_grant": UnmaskGrant.objects.create(department=production, user=member, granted_by=owner).pk,
        "upload": upload.pk,
        "model": model.pk,
        "model_slug": model.slug,
        "training_run": run.pk,
        "promotion": promotion.pk,
        "problem": problem.pk,
        "schedule_run": schedule.pk,
        "job": job.pk,
        "alert_rule": rule.pk,
        "alert": alert.pk,
        "token": token.pk,
        "department_slug": production.slug,
        "username": member.username,
    }


def core_services_audit_mark(actor, department):
    from lepton import audit

    audit.record(actor=actor, action="matrix.mark", obj=department, object_repr=f"{MARK} event")


def _responses(client, url, methods, **extra):
    for method in methods:
        response = getattr(client, method)(url, **extra)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        yield method, response, body.decode("utf-8", "replace")


def _is_login_redirect(response, admin=False) -> bool:
    if response.status_code != 302:
        return False
    return response["Location"].startswith("/admin/login/" if admin else "/accounts/login/")


def _kind(route: str, name: str) -> str:
    if name.startswith("admin:") or route.startswith("admin/"):
        return "admin"
    if route.startswith("api/v1/") or name in ("metrics",):
        return "api"
    return "browser"


def test_routes_were_found():
    names = {name for _route, name in ROUTES}
    # A sample from each part: the walk reached every include.
    assert {"home", "api:dataset-list", "datalake:dataset", "models_repo:model", "scheduling:run", "monitoring:index"} <= names
    assert {"audit_log", "audit_export"} <= names
    assert set(PUBLIC) <= names | {"set_language"}


def test_every_route_parameter_has_a_value(world):
    missing = [route for route, _name in ROUTES if _url(route, world) is None]
    assert not missing, f"Add a rule to PARAMETERS for the parameters of: {missing}"
    wrong = []
    for route, name in ROUTES:
        url = _url(route, world)
        if name and not name.startswith("admin:") and resolve(url).view_name != name:
            wrong.append((url, name, resolve(url).view_name))
    assert not wrong, f"Filled URLs resolve to other routes: {wrong}"


def test_anonymous_gets_login_or_401_everywhere(client, world):
    failures = []
    for route, name in ROUTES:
        if name in PUBLIC:
            continue
        url, kind = _url(route, world), _kind(route, name)
        for method, response, body in _responses(client, url, METHODS):
            ok = {
                "admin": _is_login_redirect(response, admin=True) or response.status_code in (404, 405),
                "api": response.status_code == 401 or (response.status_code == 405 and method != "get"),
                "browser": _is_login_redirect(response) or response.status_code == 405,
            }[kind]
            if not ok or MARK in body:
                failures.append(f"{method.upper()} {url} ({name}): {response.status_code} {response.get('Location', '')}")
    assert not failures, "Anonymous answers that are not a login redirect/401:\n" + "\n".join(failures)


def test_public_routes_answer_anonymous_without_data(client, world):
    from django.urls import reverse

    for name in PUBLIC:
        response = client.get(reverse(name)) if name != "set_language" else client.post(reverse(name), {"language": "en"})
        assert response.status_code in (200, 302, 503), name
        assert MARK not in response.content.decode("utf-8", "replace")


def test_outsider_never_sees_or_changes_production(client, outsider, world, production):
    client.force_login(outsider)
    before = AuditEvent.objects.filter(department=production).count()
    started = timezone.now()
    failures = []
    for route, name in ROUTES:
        client.force_login(outsider)  # the logout routes end the session
        url, kind = _url(route, world), _kind(route, name)
        names_production = _has_parameters(route) and kind != "admin"
        methods = METHODS if kind == "api" else ("get", "post")
        for method, response, body in _responses(client, url, methods):
            status = response.status_code
            if name in PUBLIC:
                if MARK in body:
                    failures.append(f"{method.upper()} {url} ({name}): {status} shows Production's data")
                continue
            # An error may repeat the URL it was asked for (slugs); names are never in a URL.
            for slug in (world["model_slug"], world["department_slug"]):
                body = body.replace(slug, "")
            if MARK in body:
                failures.append(f"{method.upper()} {url} ({name}): {status} shows Production's data")
            elif status >= 500:
                failures.append(f"{method.upper()} {url} ({name}): {status}")
            elif kind == "admin" and not (_is_login_redirect(response, admin=True) or status in (404, 405)):
                if name not in PUBLIC:
                    failures.append(f"{method.upper()} {url} ({name}): {status} for a non-staff user in the admin")
            elif names_production and status not in (403, 404, 405):
                failures.append(f"{method.upper()} {url} ({name}): {status} for another department's object")
    changed = AuditEvent.objects.filter(department=production, at__gte=started)
    assert not failures, "Outsider answers that leak or allow:\n" + "\n".join(failures)
    assert AuditEvent.objects.filter(department=production).count() == before, list(changed.values_list("action", flat=True))
