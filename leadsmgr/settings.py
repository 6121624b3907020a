"""Settings for Leads Manager.

Every value that differs between machines is read from the environment here, and only here.
Local defaults are safe for development (SQLite, an on-disk Celery broker); production secrets
have no default.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LEADSMGR_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "leadsmgr",  # project-wide hooks (the C timestamp loader on PostgreSQL connections); no models
    "workspaces",
    "pipelines",
    "leads",
    "integrations",
    "scoring",
    "automations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "leadsmgr.middleware.ApiBodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "workspaces.middleware.WorkspaceMiddleware",
]

ROOT_URLCONF = "leadsmgr.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "workspaces.context_processors.workspace",
            ],
        },
    },
]

WSGI_APPLICATION = "leadsmgr.wsgi.application"

# Database: PostgreSQL in production and CI, a SQLite file for a zero-install local run.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that needs no query (leadsmgr/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "leadsmgr.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "workspaces.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Front-end libraries come from npm (package.json) at setup and are served as our own static files.
NODE_MODULES_DIR = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", NODE_MODULES_DIR / "htmx.org" / "dist"),
    ("vendor/sortablejs", NODE_MODULES_DIR / "sortablejs"),
]

# Request limits. The API answers 413 above API_MAX_BODY_BYTES (see leadsmgr.middleware).
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# CSV uploads (API and web import) are far larger than any JSON body, so they have their own limit.
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
# Files with more data rows than this are imported by a worker (progress is shown), not in the request.
IMPORT_INLINE_MAX_ROWS = int(os.environ.get("IMPORT_INLINE_MAX_ROWS", "1000"))
# A worker's import of a file with at least IMPORT_PARTS * IMPORT_PART_MIN_ROWS rows is split into
# IMPORT_PARTS parts imported at the same time (leads.import_jobs); match the worker's concurrency.
# SQLite has one writer at a time, so there the default is one part (no split).
IMPORT_PARTS = int(
    os.environ.get("IMPORT_PARTS", os.environ.get("CELERY_CONCURRENCY", "2") if "sqlite" not in DATABASES["default"]["ENGINE"] else "1")
)
IMPORT_PART_MIN_ROWS = int(os.environ.get("IMPORT_PART_MIN_ROWS", "5000"))
# A running import (or part) whose last batch committed longer ago than this is taken to have lost
# its worker: the sweeper queues it again and it resumes after that batch, at most
# IMPORT_MAX_ATTEMPTS claims in all, then it fails.
IMPORT_STALL_SECONDS = int(os.environ.get("IMPORT_STALL_SECONDS", "900"))
IMPORT_MAX_ATTEMPTS = int(os.environ.get("IMPORT_MAX_ATTEMPTS", "3"))

# Outgoing email: EMAIL_URL such as smtp://user:pass@host:587?tls=1; console output by default.
EMAIL_URL = os.environ.get("EMAIL_URL", "")
if EMAIL_URL:
    from urllib.parse import parse_qs, unquote, urlparse

    _email = urlparse(EMAIL_URL)
    _email_options = parse_qs(_email.query)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or 25
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_TLS = _email_options.get("tls", ["0"])[0] in {"1", "true"}
    EMAIL_USE_SSL = _email.scheme == "smtps"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Leads Manager <noreply@localhost>")

# Twilio (SMS / WhatsApp). TWILIO_BASE_URL points the real client at another host (tests use a fake).
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
TWILIO_BASE_URL = os.environ.get("TWILIO_BASE_URL", "")

# Redis and Celery. Without REDIS_URL / CELERY_BROKER_URL the broker is a folder on disk, so a
# local run needs no server; CELERY_TASK_ALWAYS_EAGER runs tasks inline instead of a worker.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("CELERY_BROKER_CONNECTION_TIMEOUT", "4"))
# Publishing must fail fast when Redis is down: capture never waits on the broker.
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"socket_connect_timeout": 2, "socket_timeout": 5, "max_retries": 0}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery-broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Kombu's default is ./control, relative to wherever the process happens to start.
        "control_folder": str(_broker_dir / "control"),
    }

# Lead processing after capture (leads/processing.py). Hooks run between validation and dedup.
LEAD_PROCESSING_HOOKS: list[str] = []
LEAD_PROCESSING_MAX_RETRIES = int(os.environ.get("LEAD_PROCESSING_MAX_RETRIES", "5"))
# A processing task also takes up to this many leads of the workspace waiting behind its own (0 = none).
LEAD_PROCESSING_CATCH_UP = int(os.environ.get("LEAD_PROCESSING_CATCH_UP", "200"))
LEAD_PROCESSING_STALL_SECONDS = int(os.environ.get("LEAD_PROCESSING_STALL_SECONDS", "120"))
WEBHOOK_SUBMISSION_RETENTION_DAYS = int(os.environ.get("WEBHOOK_SUBMISSION_RETENTION_DAYS", "30"))
# Inbound webhook limits: body size, and requests per minute per key and per client IP.
WEBHOOK_MAX_BODY_BYTES = int(os.environ.get("WEBHOOK_MAX_BODY_BYTES", str(256 * 1024)))
WEBHOOK_RATE_LIMIT_PER_KEY = int(os.environ.get("WEBHOOK_RATE_LIMIT_PER_KEY", "6000"))
WEBHOOK_RATE_LIMIT_PER_IP = int(os.environ.get("WEBHOOK_RATE_LIMIT_PER_IP", "1200"))

# Tracking (snippet + Track API). The site key is public, so it is rate limited per key and per IP.
TRACK_MAX_EVENTS_PER_BATCH = int(os.environ.get("TRACK_MAX_EVENTS_PER_BATCH", "100"))
TRACK_SESSION_TIMEOUT_MINUTES = int(os.environ.get("TRACK_SESSION_TIMEOUT_MINUTES", "30"))
TRACK_RATE_LIMIT_PER_IP = int(os.environ.get("TRACK_RATE_LIMIT_PER_IP", "3000"))
# Faster than any person: a visitor past either rate is flagged as a bot.
TRACK_BOT_EVENTS_PER_MINUTE = int(os.environ.get("TRACK_BOT_EVENTS_PER_MINUTE", "240"))
TRACK_BOT_PAGEVIEWS_PER_MINUTE = int(os.environ.get("TRACK_BOT_PAGEVIEWS_PER_MINUTE", "60"))
TRACK_PROCESSING_STALL_SECONDS = int(os.environ.get("TRACK_PROCESSING_STALL_SECONDS", "60"))
TRACK_IDENTIFY_TOKEN_MAX_AGE = int(os.environ.get("TRACK_IDENTIFY_TOKEN_MAX_AGE", str(30 * 24 * 3600)))
# Slack incoming webhook for band and segment notifications without their own webhookUrl.
SLACK_WEBHOOK_URL = os.environ.get("SLACK_WEBHOOK_URL", "")
# The address people and sites reach this app at; used in the snippet tag and in email links.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")

# A workspace's rescoring (hourly decay, a model edit) is split into this many keyset ranges, each a
# task, so it uses that many worker processes at once: the per-lead Python and PostgreSQL's UPDATE
# share the cores. 2 matches the worker's concurrency on a 2-core machine.
RESCORE_PARALLELISM = max(1, int(os.environ.get("RESCORE_PARALLELISM", "2")))

# Periodic jobs; the database scheduler copies these into django-celery-beat's tables.
CELERY_BEAT_SCHEDULE = {
    "sweep-pending-leads": {"task": "leads.tasks.sweep_pending_leads", "schedule": 60.0},
    "compact-stage-counts": {"task": "leads.tasks.compact_stage_counts", "schedule": 15.0},
    "sweep-import-jobs": {"task": "leads.tasks.sweep_import_jobs", "schedule": 300.0},
    "rescore-all-leads": {"task": "scoring.tasks.rescore_all_leads", "schedule": 3600.0},
    "refresh-due-segments": {"task": "leads.segments.tasks.refresh_due_segments", "schedule": 60.0},
    "sweep-segment-automations": {"task": "leads.segments.tasks.sweep_segment_automations", "schedule": 60.0},
    "sweep-unprocessed-events": {"task": "leads.tracking.tasks.sweep_unprocessed_events", "schedule": 60.0},
    "sweep-queued-submissions": {"task": "integrations.tasks.sweep_queued_submissions", "schedule": 60.0},
    "purge-expired-submissions": {"task": "integrations.tasks.purge_expired_submissions", "schedule": 24 * 3600.0},
    "deliver-due-outbound": {"task": "integrations.tasks.deliver_due_outbound", "schedule": 30.0},
}

CACHES = {
    "default": (
        {"BACKEND": "leadsmgr.cache.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["workspaces.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["workspaces.permissions.HasWorkspacePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["leadsmgr.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "leadsmgr.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Leads Manager API",
    "DESCRIPTION": "Partner API: leads, pipelines and stages of one workspace, by bearer token.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Serve Swagger UI from our own static files: the docs work with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Production hardening: on whenever DEBUG is off, so `manage.py check --deploy` passes.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe health over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    # Static files are served by the app itself in production (collectstatic runs on release).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
