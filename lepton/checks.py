"""Start-up checks: an unreachable database is named clearly instead of a bare traceback."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import connection


def database_problem() -> str | None:
    """Why the default database cannot be reached, or None."""
    try:
        connection.ensure_connection()
    except Exception as exc:  # noqa: BLE001 - any driver error is reported the same way
        where = settings.DATABASE_URL or settings.DATABASES["default"]["NAME"]
        return f"The database at {redact(where)} cannot be reached: {exc}".strip()
    return None


def redact(url: str) -> str:
    """A URL with its password hidden."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(str(url))
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return str(url)


@register(Tags.database, deploy=False)
def check_database(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    problem = database_problem()
    return [Error(problem, hint="Check DATABASE_URL and that the server is running.", id="lepton.E001")] if problem else []


# --- single sign-on (lepton/oidc.py) --------------------------------------------------------


@register(Tags.security)
def check_oidc_settings(app_configs=None, **kwargs):
    """Settings that would make single sign-on refuse everyone or grant the wrong roles."""
    from lepton.oidc import GroupMapError, parse_group_map

    errors = []
    issuer, client_id = settings.LEPTON_OIDC_ISSUER, settings.LEPTON_OIDC_CLIENT_ID
    if bool(issuer) != bool(client_id):
        errors.append(
            Error(
                "Single sign-on needs both LEPTON_OIDC_ISSUER and LEPTON_OIDC_CLIENT_ID; only one is set.",
                hint="Set both (the provider's issuer URL and this application's client id), or neither.",
                id="lepton.E010",
            )
        )
    if issuer and not issuer.startswith(("https://", "http://")):
        errors.append(
            Error(
                f"LEPTON_OIDC_ISSUER={issuer!r} is not an http(s) URL.",
                hint="Use the provider's issuer, e.g. https://sso.example.com/realms/lepton.",
                id="lepton.E010",
            )
        )
    try:
        parse_group_map(settings.LEPTON_OIDC_GROUP_MAP)
    except GroupMapError as exc:
        errors.append(
            Error(
                str(exc),
                hint='Write it as group=department:role,… or as JSON {"group": "department:role"}; '
                "roles are viewer, member, maintainer, admin.",
                id="lepton.E011",
            )
        )
    return errors


@register(Tags.database)
def check_oidc_departments(app_configs=None, databases=None, **kwargs):
    """Every department LEPTON_OIDC_GROUP_MAP names exists (run by `migrate` and `check --database default`)."""
    from django.db import DatabaseError

    from lepton.models import Department
    from lepton.oidc import GroupMapError, parse_group_map

    if not databases:
        return []
    try:
        rules = parse_group_map(settings.LEPTON_OIDC_GROUP_MAP)
    except GroupMapError:
        return []  # reported by check_oidc_settings
    slugs = {rule.department for rule in rules}
    if not slugs:
        return []
    try:
        known = set(Department.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    except DatabaseError:
        return []  # no tables yet: the first migrate creates them
    missing = sorted(slugs - known)
    if not missing:
        return []
    return [
        Error(
            f"LEPTON_OIDC_GROUP_MAP names departments that do not exist: {', '.join(missing)}.",
            hint="Use department slugs as shown in the admin, create the departments, or remove those entries. "
            "Until then sign-in grants nothing for them.",
            id="lepton.E012",
        )
    ]
