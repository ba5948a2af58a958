"""Lepton settings: every value comes from the environment, with embedded defaults.

With nothing set, Lepton runs on a fresh machine: SQLite under var/, a Celery
filesystem broker under var/broker/, the data lake under var/lake/. Production sets
DATABASE_URL, REDIS_URL, LEPTON_STORAGE_URL and SECRET_KEY (see README.md, "Settings").
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false).")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from None
    return os.environ.get(name, default)


VAR_DIR = Path(env_str("LEPTON_VAR_DIR", str(BASE_DIR / "var")))

DEFAULT_SECRET_KEY = "lepton-insecure-development-key-change-me"
SECRET_KEY = env_secret("SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", True)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    raise ImproperlyConfigured(
        "DEBUG is False but SECRET_KEY is the built-in development key. "
        "Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value before running in production."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_prometheus",
    "csp",
    "lepton",
    "datalake",
    "models_repo",
    "scheduling",
    "monitoring",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "lepton.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside every middleware that may query: a request that failed on an unreachable database gets the 503 page.
    "lepton.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After LocaleMiddleware and authentication: the language kept on the person's profile wins.
    "lepton.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "lepton.middleware.RequestContextMiddleware",
    "monitoring.traffic.ActiveUsers",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "lepton.urls"
WSGI_APPLICATION = "lepton.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lepton.context_processors.lepton",
                "monitoring.alerts.context_processors.notifications",
            ],
        },
    },
]

# Database: DATABASE_URL (PostgreSQL in production), else SQLite under var/.
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    # Health checks: a kept connection is tested before a request or task reuses it, so after a
    # PostgreSQL restart no request fails on a dead connection (tests/faults/test_postgres_restart.py).
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", True),
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("LEPTON_SQLITE_PATH", str(VAR_DIR / "lepton.sqlite3")),
            # Web, worker and dispatcher share one file: wait for the write lock
            # instead of failing at once, and let readers run beside the writer (WAL).
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
# Several test runs can share one PostgreSQL server: each names its own test database.
DATABASES["default"].setdefault("TEST", {})
if env_str("LEPTON_TEST_DB_NAME"):
    DATABASES["default"]["TEST"]["NAME"] = env_str("LEPTON_TEST_DB_NAME")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("LEPTON_PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Failed logins per username and per IP within the window before login is refused.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 900)

# Single sign-on with an OpenID Connect provider (lepton/oidc.py; docs/operations.md, "Single
# sign-on"). Off while LEPTON_OIDC_ISSUER is empty; local accounts keep working either way.
LEPTON_OIDC_ISSUER = env_str("LEPTON_OIDC_ISSUER", "").rstrip("/")
LEPTON_OIDC_CLIENT_ID = env_str("LEPTON_OIDC_CLIENT_ID", "")
LEPTON_OIDC_CLIENT_SECRET = env_secret("LEPTON_OIDC_CLIENT_SECRET", "")
# The provider's name on the login page's "Sign in with …" button.
LEPTON_OIDC_NAME = env_str("LEPTON_OIDC_NAME", "single sign-on")
# The claim (ID token, else userinfo) that lists the person's groups; a dotted path reaches
# into nested claims ("realm_access.roles").
LEPTON_OIDC_GROUPS_CLAIM = env_str("LEPTON_OIDC_GROUPS_CLAIM", "groups")
# Provider group → department role: "group=department:role,…" or a JSON object. Parsed and
# checked by lepton.oidc.parse_group_map and the system checks (lepton/checks.py).
LEPTON_OIDC_GROUP_MAP = env_str("LEPTON_OIDC_GROUP_MAP", "")
# True: memberships the provider granted follow its groups at every sign-in (lowered, removed).
# False: sign-in only adds or raises them. Memberships made in Lepton are never touched.
LEPTON_OIDC_SYNC = env_bool("LEPTON_OIDC_SYNC", True)
# Seconds to wait for the provider (discovery, keys, token, userinfo) before giving up.
LEPTON_OIDC_TIMEOUT_SECONDS = env_float("LEPTON_OIDC_TIMEOUT_SECONDS", 10.0)

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from static/ too, so `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Redis: broker, cache and sessions in production; nothing needed for the embedded default.
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# Celery. The message carries only a job id; the Job row is the record (no result backend).
BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
else:
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport with atomic message writes (see lepton/broker.py).
    CELERY_BROKER_TRANSPORT = "lepton.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": env_float("LEPTON_BROKER_POLL_SECONDS", 0.05),
    }
# A separate key space lets several test runs or installations share one Redis.
if env_str("LEPTON_BROKER_PREFIX"):
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env_str("LEPTON_BROKER_PREFIX")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# All periodic work lives in the dispatcher loop (lepton/jobs/dispatcher.py), not in beat:
#  - dispatch: release queued jobs to Celery every LEPTON_DISPATCH_INTERVAL seconds;
#  - reap: requeue or fail running jobs whose heartbeat is older than LEPTON_JOB_STALE_SECONDS;
#  - expire cancels: revoke running jobs that ignored a cancel for LEPTON_CANCEL_GRACE_SECONDS;
#  - the parts' periodic work below (LEPTON_PERIODIC_TASKS), each at most every N seconds.
CELERY_BEAT_SCHEDULE: dict = {}
LEPTON_PERIODIC_TASKS = [
    # Seal audit events into the hash chain whose on-commit sealing was lost (a killed process; lepton/audit.py).
    ("lepton.audit.seal_pending", 10),
    # Delete request-traffic counts past LEPTON_TRAFFIC_RETENTION_DAYS (monitoring/services.py).
    ("monitoring.services.traffic_expire", 3600),
    # Roll closed minutes of prediction logs up into per-minute, hour and day counts; delete raw logs
    # past LEPTON_PREDICTION_LOG_RETENTION_DAYS once rolled up (monitoring/rollups.py).
    ("monitoring.rollups.roll_up", 60),
    ("monitoring.rollups.expire_logs", 3600),
    # Queue a run of each database import whose interval has come (datalake/services/imports.py).
    ("datalake.services.imports_submit_due", 30),
    # Fail dataset versions left pending by a job that ended without them (a dead worker, a revoke).
    ("datalake.services.versions_settle", 30),
    # Purge datasets that have been in the trash for more than 30 days.
    ("datalake.services.trash_expire", 3600),
    # Fail training runs left running by a job that ended without them (a killed worker).
    ("models_repo.services.runs_settle", 30),
    # Fail promotion requests left checking by a gate job that ended without a verdict.
    ("models_repo.services.promotions_settle", 30),
    # Queue a drift job for each production version with enough new sampled inputs (cheap counts;
    # the job reads Parquet on a worker: monitoring/services.py).
    ("monitoring.services.drift_enqueue_due", 300),
    # Evaluate every enabled alert rule: open, refresh and auto-resolve alerts, notify (monitoring/alerts/services.py).
    ("monitoring.alerts.services.alerts_evaluate", 60),
    # Queue a job that POSTs the signed webhook bodies that are due, retried with backoff (monitoring/alerts/services.py).
    ("monitoring.alerts.services.webhooks_enqueue_due", 10),
    # Tell both departments of each share that ends within LEPTON_SHARE_REMIND_DAYS, once (lepton/collab/services.py).
    ("lepton.collab.services.shares_remind_due", 3600),
]
# Days before a share ends that both departments are reminded (in the app and by e-mail).
LEPTON_SHARE_REMIND_DAYS = env_int("LEPTON_SHARE_REMIND_DAYS", 7)

# The job system (lepton/jobs/).
LEPTON_DISPATCH_INTERVAL = env_float("LEPTON_DISPATCH_INTERVAL", 0.2)
# Seconds between passes while queued jobs wait only for a worker slot (a pass is then two small queries).
LEPTON_DISPATCH_BUSY_INTERVAL = env_float("LEPTON_DISPATCH_BUSY_INTERVAL", 0.02)
# Messages released ahead of free worker slots, per slot: more is faster, less is fairer.
LEPTON_DISPATCH_BACKLOG_PER_SLOT = env_int("LEPTON_DISPATCH_BACKLOG_PER_SLOT", 1)
LEPTON_JOB_HEARTBEAT_SECONDS = env_float("LEPTON_JOB_HEARTBEAT_SECONDS", 5.0)
LEPTON_JOB_STALE_SECONDS = env_float("LEPTON_JOB_STALE_SECONDS", 60.0)
LEPTON_WORKER_HEARTBEAT_SECONDS = env_float("LEPTON_WORKER_HEARTBEAT_SECONDS", 5.0)
LEPTON_WORKER_STALE_SECONDS = env_float("LEPTON_WORKER_STALE_SECONDS", 20.0)
LEPTON_CANCEL_GRACE_SECONDS = env_float("LEPTON_CANCEL_GRACE_SECONDS", 30.0)
# First wait before retrying a job after a transient error (then ×4 per attempt).
LEPTON_JOB_RETRY_BACKOFF_SECONDS = env_float("LEPTON_JOB_RETRY_BACKOFF_SECONDS", 5.0)
# /healthz fails when the dispatcher has not passed for this long.
LEPTON_DISPATCHER_STALE_SECONDS = env_float("LEPTON_DISPATCHER_STALE_SECONDS", 30.0)
# Released messages a worker never picked up go back to the dispatcher after this long.
LEPTON_RELEASE_TIMEOUT_SECONDS = env_float("LEPTON_RELEASE_TIMEOUT_SECONDS", 600.0)
# Extra modules that register job kinds (tests and benchmarks add their own).
LEPTON_JOB_MODULES = env_list("LEPTON_JOB_MODULES", [])

# Object storage (lepton/storage.py): file:///path or s3://bucket/prefix.
LEPTON_STORAGE_URL = env_str("LEPTON_STORAGE_URL", (VAR_DIR / "lake").as_uri())
LEPTON_STORAGE_OPTIONS = {
    "endpoint_url": env_str("AWS_ENDPOINT_URL", ""),
    "key": env_secret("AWS_ACCESS_KEY_ID", ""),
    "secret": env_secret("AWS_SECRET_ACCESS_KEY", ""),
}

# Largest file one upload may bring (browser, multipart API or resumable chunks), and the
# largest chunk of a resumable upload.
LEPTON_MAX_UPLOAD_BYTES = env_int("LEPTON_MAX_UPLOAD_BYTES", 5 * 1024**3)
LEPTON_MAX_CHUNK_BYTES = env_int("LEPTON_MAX_CHUNK_BYTES", 64 * 1024**2)
# Unfinished resumable uploads are forgotten after this many hours.
LEPTON_UPLOAD_SESSION_HOURS = env_int("LEPTON_UPLOAD_SESSION_HOURS", 48)
# Fields one form may send: the scheduling table editor sends one per cell (up to 1000 operations,
# 200 jobs and 200 machines: about 5,400; scheduling.forms.EDITOR_MAX_ROWS). Django's default is 1000.
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("LEPTON_MAX_FORM_FIELDS", 10_000)

# The SQL console: each query runs in its own sandboxed process with these limits.
LEPTON_SQL_TIMEOUT_SECONDS = env_float("LEPTON_SQL_TIMEOUT_SECONDS", 30.0)
LEPTON_SQL_MEMORY_LIMIT = env_str("LEPTON_SQL_MEMORY_LIMIT", "512MB")
# Downloading a query's whole result as CSV: at most this many rows, within this many seconds.
LEPTON_SQL_EXPORT_MAX_ROWS = env_int("LEPTON_SQL_EXPORT_MAX_ROWS", 1_000_000)
LEPTON_SQL_EXPORT_TIMEOUT_SECONDS = env_float("LEPTON_SQL_EXPORT_TIMEOUT_SECONDS", 300.0)

# Database imports (datalake/services/imports.py): limits of one run, the hosts they may reach
# (empty: any; operators of a closed network list their database hosts), the shortest interval.
LEPTON_IMPORT_TIMEOUT_SECONDS = env_float("LEPTON_IMPORT_TIMEOUT_SECONDS", 1800.0)
LEPTON_IMPORT_MAX_ROWS = env_int("LEPTON_IMPORT_MAX_ROWS", 50_000_000)
LEPTON_IMPORT_ALLOWED_HOSTS = env_list("LEPTON_IMPORT_ALLOWED_HOSTS", [])
LEPTON_IMPORT_MIN_INTERVAL_MINUTES = env_int("LEPTON_IMPORT_MIN_INTERVAL_MINUTES", 5)
# Fernet keys for stored credentials (lepton/crypto.py), comma-separated: the first encrypts,
# all decrypt (rotation). Empty: one key derived from SECRET_KEY.
LEPTON_ENCRYPTION_KEYS = [k.strip() for k in env_secret("LEPTON_ENCRYPTION_KEYS", "").split(",") if k.strip()]
# The data key of sensitive columns (datalake/engine/sensitive.py): 16, 24 or 32 bytes as hex or
# base64. Empty is fine until a column is classified personal or confidential; then the
# datalake.E001 check refuses to start without it. LEPTON_DATA_KEY_PREVIOUS (comma-separated)
# still decrypts after a rotation until `manage.py reencrypt_versions` has run.
LEPTON_DATA_KEY = env_secret("LEPTON_DATA_KEY", "")
LEPTON_DATA_KEY_PREVIOUS = [k.strip() for k in env_secret("LEPTON_DATA_KEY_PREVIOUS", "").split(",") if k.strip()]

# A recipe run is stopped after this many seconds.
LEPTON_RECIPE_TIMEOUT_SECONDS = env_float("LEPTON_RECIPE_TIMEOUT_SECONDS", 1800.0)
# Model versions each web or worker process keeps loaded for predictions (least recently used go first).
LEPTON_SERVING_CACHE_SIZE = env_int("LEPTON_SERVING_CACHE_SIZE", 8)
# Rows one prediction request may hold, and the share of requests whose inputs are logged (for drift).
LEPTON_PREDICT_MAX_ROWS = env_int("LEPTON_PREDICT_MAX_ROWS", 10_000)
LEPTON_PREDICTION_LOG_SAMPLE = env_float("LEPTON_PREDICTION_LOG_SAMPLE", 0.1)
# Every prediction request is logged (models_repo.PredictionLog) with at most this many of its
# predictions (for feedback); raw logs are deleted after LEPTON_PREDICTION_LOG_RETENTION_DAYS, their
# per-minute, hour and day rollups (monitoring.PredictionRollup) are kept.
LEPTON_PREDICTION_LOG_MAX_OUTPUTS = env_int("LEPTON_PREDICTION_LOG_MAX_OUTPUTS", 1000)
LEPTON_PREDICTION_LOG_RETENTION_DAYS = env_int("LEPTON_PREDICTION_LOG_RETENTION_DAYS", 30)
# A web process writes its prediction logs in batches: at most this many seconds after a request.
LEPTON_PREDICTION_LOG_FLUSH_SECONDS = env_float("LEPTON_PREDICTION_LOG_FLUSH_SECONDS", 5.0)
# Input drift (monitoring/services.py): each production version is compared with its training
# inputs every LEPTON_DRIFT_INTERVAL_MINUTES over the sampled inputs of the last
# LEPTON_DRIFT_WINDOW_HOURS, once at least LEPTON_DRIFT_MIN_SAMPLE of them arrived (the most recent
# LEPTON_DRIFT_MAX_SAMPLE are compared); PSI above the two thresholds is moderate, then significant.
# Alert webhooks (monitoring/alerts/): hosts a rule's webhook URL may name (exact, ".example.com"
# for a domain and its subdomains, "*" for any; empty turns webhooks off), the time one POST may
# take, and the retries: attempts at most, the first wait doubled after each failure.
LEPTON_WEBHOOK_ALLOWED_HOSTS = env_list("LEPTON_WEBHOOK_ALLOWED_HOSTS", [])
LEPTON_WEBHOOK_TIMEOUT_SECONDS = env_float("LEPTON_WEBHOOK_TIMEOUT_SECONDS", 5.0)
LEPTON_WEBHOOK_MAX_ATTEMPTS = env_int("LEPTON_WEBHOOK_MAX_ATTEMPTS", 6)
LEPTON_WEBHOOK_BACKOFF_SECONDS = env_float("LEPTON_WEBHOOK_BACKOFF_SECONDS", 30.0)
LEPTON_DRIFT_WINDOW_HOURS = env_int("LEPTON_DRIFT_WINDOW_HOURS", 24)
LEPTON_DRIFT_INTERVAL_MINUTES = env_int("LEPTON_DRIFT_INTERVAL_MINUTES", 60)
LEPTON_DRIFT_MIN_SAMPLE = env_int("LEPTON_DRIFT_MIN_SAMPLE", 200)
LEPTON_DRIFT_MAX_SAMPLE = env_int("LEPTON_DRIFT_MAX_SAMPLE", 10_000)
LEPTON_DRIFT_PSI_MODERATE = env_float("LEPTON_DRIFT_PSI_MODERATE", 0.1)
LEPTON_DRIFT_PSI_SIGNIFICANT = env_float("LEPTON_DRIFT_PSI_SIGNIFICANT", 0.25)
# Training rows profiled for a reference at most (a seeded random sample of larger training sets).
LEPTON_DRIFT_REFERENCE_MAX_ROWS = env_int("LEPTON_DRIFT_REFERENCE_MAX_ROWS", 200_000)
# The predict fast path (models_repo.api.fastpath) answers a token's repeat predictions without
# Django's middleware; a grant it keeps ends after this many seconds at most (and at once when
# access or aliases change, see lepton.counters).
LEPTON_PREDICT_FAST_PATH = env_bool("LEPTON_PREDICT_FAST_PATH", True)
LEPTON_PREDICT_GRANT_SECONDS = env_int("LEPTON_PREDICT_GRANT_SECONDS", 60)
# monitoring.traffic counts every request (fast path included) for the platform dashboard.
LEPTON_WSGI_LAYERS = [
    "monitoring.traffic.TrafficLayer",
    *(["models_repo.api.fastpath.PredictFastPath"] if LEPTON_PREDICT_FAST_PATH else []),
]
# Traffic counts older than this are deleted by monitoring.services.traffic_expire.
LEPTON_TRAFFIC_RETENTION_DAYS = env_int("LEPTON_TRAFFIC_RETENTION_DAYS", 90)
# Largest model file one upload may bring (ONNX, .keras, skops: models_repo/services/uploads.py);
# the file is read whole to be checked.
LEPTON_MODEL_UPLOAD_MAX_BYTES = env_int("LEPTON_MODEL_UPLOAD_MAX_BYTES", 512 * 1024**2)

# E-mail.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if env_str("EMAIL_HOST") else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "lepton@localhost")

# REST API.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "lepton.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["lepton.api.permissions.TokenScopePermission"],
    "DEFAULT_PAGINATION_CLASS": "lepton.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "lepton.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["lepton.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env_str("API_RATE_LIMIT", "600/min")},
    # `?format=` is the data catalog's filter (datalake.filtersets), not DRF's renderer switch:
    # the API speaks JSON, and downloads choose their file type with `?as=`.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lepton API",
    "DESCRIPTION": "Departments share data, models and scheduling through one API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation may answer 404 (an unknown object, a page past the end) and 429 (throttled).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "lepton.api.schema.document_common_errors"],
    # Several models have a `status`: name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "lepton.jobs.models.JobStatus",
        "DatasetVersionStatusEnum": "datalake.models.VersionStatus",
        "ShopProblemSourceEnum": "scheduling.models.ProblemSource",
        "AlertStateEnum": "monitoring.alerts.models.AlertState",
        "AlertKindEnum": "monitoring.alerts.models.AlertKind",
    },
}

# django-prometheus exports request metrics; lepton/metrics.py adds job and worker gauges.
PROMETHEUS_EXPORT_MIGRATIONS = False
# When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (it names departments).
METRICS_TOKEN = env_secret("METRICS_TOKEN", "")

# Transport and cookies. Production is DEBUG=False: HTTPS only (redirect, HSTS, secure cookies);
# `manage.py check --deploy` is clean then (tests/lepton/test_security.py). Health checks and the
# metrics scrape may stay on plain HTTP inside the cluster.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 14 * 24 * 3600)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_HTTPS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
# The header only allows a submission to the browsers' preload list; nothing is submitted.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from our own static files, never inline
# (page data travels in json_script tags; templates/base.html). Styles allow inline attributes
# because Plotly and htmx set them; images allow data: (the favicon, Plotly's exports).
# The JSON API (/api/v1/) runs no scripts and gets none: its answers match the predict fast path's
# (models_repo/api/fastpath.py), which bypasses the middleware. The API docs page keeps the policy.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/v1/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# /healthz?deep=1 queues a platform self-check when the last one is older than the interval,
# and reports failure when none succeeded within the max age.
LEPTON_SELFCHECK_INTERVAL = env_int("LEPTON_SELFCHECK_INTERVAL", 60)
LEPTON_SELFCHECK_MAX_AGE = env_int("LEPTON_SELFCHECK_MAX_AGE", 600)

# The embedded default writes under var/: make its folders so a fresh clone just runs.
for _folder in (VAR_DIR, BROKER_DIR / "queue", BROKER_DIR / "processed", BROKER_DIR / "control"):
    if not DATABASE_URL or not REDIS_URL:
        _folder.mkdir(parents=True, exist_ok=True)
if LEPTON_STORAGE_URL.startswith("file://"):
    Path(LEPTON_STORAGE_URL[len("file://") :]).mkdir(parents=True, exist_ok=True)
