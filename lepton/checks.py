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
