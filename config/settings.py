"""Kefu Console settings: one file, every value from the environment.

Each variable is documented in `.env.example`. A value that cannot be parsed
fails loudly at start-up (ImproperlyConfigured), never silently at run time.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local .env file is a convenience for development; real deployments set the
# environment. Values already in the environment win.
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _env_or_fail(read, name, **kwargs):
    try:
        return read(name, **kwargs)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Environment variable {name} has a bad value: {exc}") from exc


DEBUG = _env_or_fail(env.bool, "DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "insecure-development-key-only-for-debug"
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = _env_or_fail(env.list, "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _env_or_fail(env.list, "CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "wechat",
    "wechat.sandbox",
    "inbox",
]

MIDDLEWARE = [
    "config.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

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
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

# --- Database --------------------------------------------------------------
DATABASES = {
    "default": _env_or_fail(env.db_url, "DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the single writer; synchronous=NORMAL is the
    # documented safe pairing for WAL. IMMEDIATE transactions take the write
    # lock up front so two writers queue on busy_timeout instead of failing
    # with "database is locked" halfway through a transaction.
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].update(
        {
            "init_command": ("PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
    if _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
# Persistent connections: reconnecting per request costs ~5x throughput.
_db["CONN_MAX_AGE"] = None
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"].startswith("django.db.backends.postgresql"):
    # A database host that does not answer must fail a request in seconds, not
    # after the kernel's TCP timeout (minutes); keepalives notice a peer that
    # vanished under an idle persistent connection.
    _db.setdefault("OPTIONS", {})
    for _key, _value in {
        "connect_timeout": _env_or_fail(env.int, "DATABASE_CONNECT_TIMEOUT", default=5),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }.items():
        _db["OPTIONS"].setdefault(_key, _value)
    # Under ASGI every Django view runs in a thread of its own, so a
    # "persistent" connection lives only as long as one request and piles up
    # until garbage collection (it exhausted max_connections under load). A
    # per-process pool gives the reuse without the pile-up.
    if _env_or_fail(env.bool, "DATABASE_POOL", default=True):
        _db["OPTIONS"].setdefault(
            "pool",
            {
                "min_size": _env_or_fail(env.int, "DATABASE_POOL_MIN_SIZE", default=1),
                "max_size": _env_or_fail(env.int, "DATABASE_POOL_MAX_SIZE", default=20),
                "timeout": _env_or_fail(env.float, "DATABASE_POOL_TIMEOUT", default=10.0),
            },
        )
        _db["CONN_MAX_AGE"] = 0
# Test database: a file for SQLite (not :memory:) so that uvicorn and worker
# processes started by tests see the same rows as the test itself.
# TEST_DATABASE_NAME lets parallel runs on one machine keep apart.
_test_name = env.str("TEST_DATABASE_NAME", default="")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["TEST"] = {"NAME": str(BASE_DIR / "var" / f"{_test_name or 'test-db'}.sqlite3")}
elif _test_name:
    _db["TEST"] = {"NAME": _test_name}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and task backend --------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Bounded waits on Redis: a Redis that is down or unreachable must cost a
# webhook's after-commit publish (and /healthz) seconds, never the TCP timeout.
REDIS_CONNECT_TIMEOUT = _env_or_fail(env.float, "REDIS_CONNECT_TIMEOUT", default=2.0)
REDIS_SOCKET_TIMEOUT = _env_or_fail(env.float, "REDIS_SOCKET_TIMEOUT", default=5.0)
# /healthz answers within this many seconds whatever is down.
HEALTHZ_TIMEOUT = _env_or_fail(env.float, "HEALTHZ_TIMEOUT", default=3.0)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # The PubSub layer had the better tail latency under fan-out
            # (see docs/benchmarks.md).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                        "socket_timeout": REDIS_SOCKET_TIMEOUT,
                        "socket_keepalive": True,
                        "health_check_interval": 30,
                    }
                ],
                # Several consoles (or test runs) can share one Redis: PubSub
                # channels are global to the server, whatever the db number.
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}

TASKS = {
    "default": {
        "BACKEND": env.str("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default", "send", "media"],
    }
}

# --- Auth, i18n, time --------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# Static files served by the ASGI app itself (simple deployments, the demo and
# the tests); turn off when a reverse proxy serves STATIC_ROOT.
SERVE_STATIC = _env_or_fail(env.bool, "SERVE_STATIC", default=True)
MEDIA_URL = "media/"
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))

SESSION_COOKIE_SECURE = _env_or_fail(env.bool, "SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if _env_or_fail(env.bool, "BEHIND_TLS_PROXY", default=False) else None
)

# --- WeChat ----------------------------------------------------------------
WECHAT_APP_ID = env.str("WECHAT_APP_ID", default="")
WECHAT_APP_SECRET = env.str("WECHAT_APP_SECRET", default="")
WECHAT_TOKEN = env.str("WECHAT_TOKEN", default="")
WECHAT_ENCODING_AES_KEY = env.str("WECHAT_ENCODING_AES_KEY", default="")
WECHAT_ORIGINAL_ID = env.str("WECHAT_ORIGINAL_ID", default="")
WECHAT_ACCOUNT_NAME = env.str("WECHAT_ACCOUNT_NAME", default="")
WECHAT_API_BASE = env.str("WECHAT_API_BASE", default="https://api.weixin.qq.com").rstrip("/")
WECHAT_SANDBOX = _env_or_fail(env.bool, "WECHAT_SANDBOX", default=False)
# Where the sandbox's simulated followers post their pushes; empty: derived
# from WECHAT_API_BASE (…/sandbox) or from the simulator page's own host.
SANDBOX_WEBHOOK_BASE = env.str("SANDBOX_WEBHOOK_BASE", default="")
# Replay protection on pushes: a timestamp further than this from now is refused.
WECHAT_TIMESTAMP_TOLERANCE = _env_or_fail(env.int, "WECHAT_TIMESTAMP_TOLERANCE", default=300)
WECHAT_MAX_BODY_BYTES = _env_or_fail(env.int, "WECHAT_MAX_BODY_BYTES", default=64 * 1024)
# The webhook keeps each active account for this long per process (0: look it up on every push).
WECHAT_ACCOUNT_CACHE_SECONDS = _env_or_fail(env.float, "WECHAT_ACCOUNT_CACHE_SECONDS", default=5.0)
# Threads per web process that store pushes (wechat.consumers); each keeps one database connection.
WEBHOOK_THREADS = _env_or_fail(env.int, "WEBHOOK_THREADS", default=8)
WECHAT_CONNECT_TIMEOUT = _env_or_fail(env.float, "WECHAT_CONNECT_TIMEOUT", default=3.0)
WECHAT_READ_TIMEOUT = _env_or_fail(env.float, "WECHAT_READ_TIMEOUT", default=10.0)
SEND_WORKER_THREADS = _env_or_fail(env.int, "SEND_WORKER_THREADS", default=8)
SEND_LEASE_SECONDS = _env_or_fail(env.int, "SEND_LEASE_SECONDS", default=60)

if WECHAT_ENCODING_AES_KEY and len(WECHAT_ENCODING_AES_KEY) != 43:
    raise ImproperlyConfigured("WECHAT_ENCODING_AES_KEY must be exactly 43 characters")

# --- Logging -----------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = _env_or_fail(env.bool, "LOG_JSON", default=False)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "config.logging.RequestIdFilter"},
        "redact": {"()": "config.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "plain": {"()": "config.logging.PlainFormatter"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id", "redact"],
            "formatter": "json" if LOG_JSON else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "urllib3": {"level": "WARNING"},
        # uvicorn's own lines through the same handler: one format, redacted.
        # No level here, so uvicorn's --log-level still decides.
        "uvicorn": {"handlers": ["console"], "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "propagate": False},
    },
}
