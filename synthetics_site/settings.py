"""Project settings, read from the environment with safe local defaults.

DATABASE_URL selects PostgreSQL (postgres://...) through psycopg 3; without it an embedded SQLite file
under .local/ is used, tuned for a web process and a worker writing at the same time. An installed
Synthetics (a wheel, the `synthetics` command) keeps .local's contents in the user's data directory.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE

from synthetics_site.locations import running_from_checkout, user_data_dir

BASE_DIR = Path(__file__).resolve().parent.parent
# A clone keeps its SQLite database, secret key and collected static files in the checkout (.local/,
# staticfiles/); an installed wheel's BASE_DIR is site-packages, so it keeps them in the user's data
# directory instead (docs/install.md). SYNTHETICS_LOCAL_DIR and STATIC_ROOT override either.
FROM_CHECKOUT = running_from_checkout(BASE_DIR)
LOCAL_DIR = Path(
    os.environ.get("SYNTHETICS_LOCAL_DIR")
    or (BASE_DIR / ".local" if FROM_CHECKOUT else user_data_dir())
)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_secret_key() -> str:
    """Return a random key kept in LOCAL_DIR (never committed) when SECRET_KEY is unset: one per
    checkout, or one per user for an installed Synthetics."""
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    path = LOCAL_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_q",
    "synthetics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "synthetics.middleware.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "synthetics_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent / "templates"],  # inside the package: in the wheel
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "synthetics_site.wsgi.application"
ASGI_APPLICATION = "synthetics_site.asgi.application"

# --- Database -----------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
else:
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(LOCAL_DIR / "synthetics.sqlite3")),
            "OPTIONS": {
                # A writer takes the database lock when its transaction begins, so two writers queue
                # up (for up to `timeout` seconds) instead of failing half-way with "database is locked".
                "transaction_mode": "IMMEDIATE",
                # 20 s: under gunicorn's 30-second worker timeout, so a request that waits this
                # long still gets an answer (the API's 503 "busy"), not a killed worker.
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=20000;"
                    "PRAGMA foreign_keys=ON;"
                ),
            },
            # Tests get a file of their own (created fresh and deleted by the test run), not an
            # in-memory database: the live server's threads then use their own connections and
            # the same WAL/IMMEDIATE locking as production instead of sharing one connection.
            "TEST": {"NAME": str(LOCAL_DIR / "test_synthetics.sqlite3")},
        }
    }

# --- Attach mode (docs/attach.md) -----------------------------------------------------
# SYNTHETICS_TARGET names a target file that maps the generator's rows onto an application's own
# tables. Synthetics' own tables (settings, sim users, journeys, the ledger, its staff accounts and
# Django's and django-q2's tables) then live in a schema of their own, SYNTHETICS_SCHEMA
# (default "synthetics"): the connection's search_path is that schema alone, so `migrate` creates
# nothing in the application's schemas and every application table is reached by its qualified
# name through the target file. PostgreSQL only.
SYNTHETICS_TARGET = os.environ.get("SYNTHETICS_TARGET", "").strip()
SYNTHETICS_SCHEMA = os.environ.get("SYNTHETICS_SCHEMA", "synthetics").strip()


def _attach(databases: dict) -> None:
    """Point the connection at Synthetics' own schema, or refuse to start with a message."""
    import re

    from django.core.exceptions import ImproperlyConfigured

    if databases["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            "SYNTHETICS_TARGET is set, but attach mode is PostgreSQL only: set "
            "DATABASE_URL=postgres://… to the application's database, or unset SYNTHETICS_TARGET "
            "for demo mode (the embedded SQLite default)."
        )
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", SYNTHETICS_SCHEMA) or SYNTHETICS_SCHEMA in (
        "public",
        "pg_catalog",
        "information_schema",
    ):
        raise ImproperlyConfigured(
            "SYNTHETICS_SCHEMA must be a schema of Synthetics' own: lower-case letters, digits "
            f"and _, not public or a system schema; got {SYNTHETICS_SCHEMA!r}."
        )
    options = databases["default"].setdefault("OPTIONS", {})
    options["options"] = f"{options.get('options', '')} -c search_path={SYNTHETICS_SCHEMA}".strip()


if SYNTHETICS_TARGET:
    _attach(DATABASES)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "synthetics.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(
    os.environ.get("STATIC_ROOT")
    or (BASE_DIR / "staticfiles" if FROM_CHECKOUT else LOCAL_DIR / "staticfiles")
)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise serves from here after collectstatic
WHITENOISE_USE_FINDERS = True  # ... and straight from the apps' static folders before it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "admin:login"

# --- Security -----------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Production profile (docs/operations.md "Production"): SYNTHETICS_PRODUCTION=1 behind HTTPS turns on secure
# cookies, the HTTPS redirect and HSTS, so `manage.py check --deploy` passes with no warning.
PRODUCTION = env_bool("SYNTHETICS_PRODUCTION", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# "preload" only marks the site as eligible for browsers' preload list; submitting it is a separate step.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if env_bool("SECURE_PROXY_SSL_HEADER", False):  # behind a proxy that sets X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp) on every page: scripts, styles, images and connections only
# from this site, no inline script, no framing. The Studio, the admin and the Swagger UI satisfy it
# (the browser tests fail on any CSP violation). Django's admin sets a few inline style attributes,
# hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Cache ---------------------------------------------------------------------------------------
# Shared by every web worker process: the database (a table created by a migration), or Redis when
# REDIS_URL is set. Never a per-process cache. (The API's throttle keeps its own table, updated
# atomically: synthetics.api.throttles.)
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "synthetics_cache",
        }
    }

# The API's bodies are small JSON objects; anything larger is refused with a 413 before it is read.
SYNTHETICS_API_MAX_BODY_BYTES = 64 * 1024

# --- REST framework -----------------------------------------------------------------------------
# Calls a minute per user to run-now and cleanup: an operator's bursts pass, a runaway loop is stopped.
API_BURST_RATE = os.environ.get("SYNTHETICS_API_BURST_RATE", "20/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Bearer first, so an anonymous request is answered 401 with WWW-Authenticate: Bearer.
        "synthetics.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "synthetics.api.parsers.BoundedJSONParser",
        "synthetics.api.parsers.FormLabelledJSONParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["synthetics.api.renderers.FastJSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "synthetics.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Synthetics API",
    "DESCRIPTION": (
        "Steer the synthetic activity generator: status, pause/resume, settings, run now, activity, "
        "cleanup and the simulated users. Authenticate with `Authorization: Bearer <token>` "
        "(create one with `manage.py api_token <username>`) or a browser session with CSRF."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["synthetics.api.permissions.CanViewSynthetics"],
    "SERVE_AUTHENTICATION": None,
    "PARSER_WHITELIST": ["synthetics.api.parsers.BoundedJSONParser"],
    "ENUM_NAME_OVERRIDES": {
        "FidelityEnum": "synthetics.api.schema.FIDELITY_CHOICES",
        "GeneratorStatusEnum": "synthetics.api.schema.GENERATOR_STATUS_CHOICES",
        "CleanupJobStatusEnum": "synthetics.api.schema.CLEANUP_STATUS_CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "synthetics.api.schema.close_request_bodies",
        "synthetics.api.schema.fresh_examples",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- django-q2 ----------------------------------------------------------------------------------
# The ORM broker on the same database by default; REDIS_URL switches to Redis. Scale out by running
# more `manage.py qcluster` processes, on more machines, against the same database (and broker).
# catch_up is off: after downtime django-q2 must not replay missed minutes; the run itself decides
# what to cover (at most MAX_CATCH_UP_MINUTES). timeout < retry, so a task is only redelivered after
# the worker running it has been stopped.
Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "synthetics"),  # also the Redis queue's name
    "workers": int(os.environ.get("Q_WORKERS", "2")),
    "timeout": 50,
    "retry": 120,
    "max_attempts": 1,
    "catch_up": False,
    "orm": "default",
    "save_limit": 500,
    "ack_failures": True,
}
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL

# --- Synthetics ---------------------------------------------------------------------------------
# Seed of the generator's random streams: the same seed, settings, catalogue and sequence of run
# times give the same rows.
SYNTHETICS_SEED = int(os.environ.get("SYNTHETICS_SEED", "20260109"))


def _shards(raw: str) -> int:
    """SYNTHETICS_SHARDS: a whole number 1..64, or the process refuses to start with a message."""
    try:
        shards = int(raw)
    except ValueError:
        shards = 0
    if not 1 <= shards <= 64:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"SYNTHETICS_SHARDS must be a whole number from 1 to 64, got {raw!r}."
        )
    return shards


# Scheduled runs split into this many shards, each a slice of the pool (sim user id % shards) with
# its own random stream, lock and coverage, fanned out as django-q2 tasks: several workers, on
# several machines, share a minute's work (docs/operations.md "Scaling out"). 1: one run a minute, as ever.
SYNTHETICS_SHARDS = _shards(os.environ.get("SYNTHETICS_SHARDS", "1").strip() or "1")
# Time budgets of a run, in seconds. A scheduled or backfill run must finish well inside django-q2's
# task timeout (it fails itself, recorded, instead of being killed); a manual run answers an HTTP
# client, so it waits at most a few seconds for a run in progress and finishes before gunicorn's
# 30-second worker timeout.
SYNTHETICS_RUN_BUDGET_SECONDS = float(
    os.environ.get("SYNTHETICS_RUN_BUDGET_SECONDS", str(Q_CLUSTER["timeout"] - 10))
)
SYNTHETICS_MANUAL_RUN_BUDGET_SECONDS = float(
    os.environ.get("SYNTHETICS_MANUAL_RUN_BUDGET_SECONDS", "20")
)
SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS = float(
    os.environ.get("SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS", "5")
)
# Cleanup: the API deletes for this long in the request, then hands what is left to django-q2 tasks
# of at most the second budget each (well inside the task timeout), which follow one another.
SYNTHETICS_CLEANUP_REQUEST_SECONDS = float(
    os.environ.get("SYNTHETICS_CLEANUP_REQUEST_SECONDS", "5")
)
# The admin's lists of events and journeys stop a filter that reads longer than this (a message says
# so), so no filter combination over millions of rows can hold a worker until it is killed.
SYNTHETICS_ADMIN_LIST_SECONDS = float(os.environ.get("SYNTHETICS_ADMIN_LIST_SECONDS", "3"))
SYNTHETICS_CLEANUP_TASK_SECONDS = float(
    os.environ.get("SYNTHETICS_CLEANUP_TASK_SECONDS", str(Q_CLUSTER["timeout"] - 20))
)

# /metrics (Prometheus): with a token, only `Authorization: Bearer <token>` reads it; without one,
# only a direct request from loopback (docs/operations.md "Metrics and logs").
SYNTHETICS_METRICS_TOKEN = os.environ.get("SYNTHETICS_METRICS_TOKEN", "").strip()


def _log_format(raw: str) -> str:
    """SYNTHETICS_LOG_FORMAT: plain (default) or json, or the process refuses to start."""
    value = raw.strip().lower() or "plain"
    if value not in {"plain", "json"}:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"SYNTHETICS_LOG_FORMAT must be plain or json, got {raw!r}.")
    return value


SYNTHETICS_LOG_FORMAT = _log_format(os.environ.get("SYNTHETICS_LOG_FORMAT", "plain"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # One JSON object a line for log shippers: the same message, plus a run line's fields
        # (run_id, trigger, status, ...) as keys of their own.
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    # stdout, so `make run | grep synthetics` shows one line per run, as the seed's log command did.
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": SYNTHETICS_LOG_FORMAT,
            "stream": "ext://sys.stdout",
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "synthetics": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
