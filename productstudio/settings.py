"""ProductStudio's one settings file.

Every value comes from an environment variable with a safe local default, so a fresh
checkout runs on SQLite with no configuration and a production deployment is configured
entirely from its environment. The README has a table of every variable.
"""

import logging
import math
import os
import tempfile
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from productstudio.api_docs import DESCRIPTION as API_DESCRIPTION
from productstudio.lib.envfile import EnvFileError, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_positive_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None
    if number < 1:
        raise ImproperlyConfigured(f"{name} must be at least 1, not {number}.")
    return number


def env_positive_float(name: str, default: float) -> float:
    """A number of seconds (or the like) above zero: a typo stops start-up naming the
    setting, instead of a bare ValueError or a check that can never pass."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}.") from None
    if not math.isfinite(number) or number <= 0:
        raise ImproperlyConfigured(f"{name} must be more than 0, not {value!r}.")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A request rate (`50/min`, `2/s`, `20/6s`, `unlimited`), refused at start-up by name."""
    from jobs.engines.segmind.ratelimit import parse_rate  # pure: no Django, no database

    value = env(name, default)
    try:
        parse_rate(value)
    except ValueError as e:
        raise ImproperlyConfigured(f"{name}: {e}") from e
    return value


# The checkout's `.env` (`make run` writes one with DEBUG on and a development secret), so
# that `manage.py` works from any shell; a variable of the real environment wins over it.
# pytest reads none, so the suite behaves alike on every checkout (its own subprocesses
# set what they need). ENV_FILE names another file, or none when set empty.
ENV_FILE = env("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE and "PYTEST_VERSION" not in os.environ:
    try:
        load_env_file(Path(ENV_FILE), os.environ)
    except EnvFileError as e:
        raise ImproperlyConfigured(str(e)) from None

DEBUG = env_bool("DEBUG", False)

# pytest (8.2+) announces itself in PYTEST_VERSION: tests get the development key too, so
# `pytest` works without exporting anything, while a production process without DEBUG and
# without SECRET_KEY refuses to start.
_DEV_SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if DEBUG or "PYTEST_VERSION" in os.environ:
        SECRET_KEY = _DEV_SECRET_KEY
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. On a local checkout, run `make run` "
            "once: it writes .env with DEBUG=1 and a development secret, which every "
            "manage.py command then reads. In production, set SECRET_KEY in the environment."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    # The admin site asks staff for their second factor (productstudio/admin_site.py).
    "productstudio.apps.StudioAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    # Request counts and latencies by view, for /metrics (productstudio/health.py).
    "django_prometheus",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "accounts",
    "jobs",
]

MIDDLEWARE = [
    # First: every answer (a probe's too) carries the request's id, and log lines it.
    "productstudio.middleware.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before the HTTPS redirect and the host check: a load balancer probes each machine
    # over plain HTTP at its own address (productstudio/health.py).
    "productstudio.health.HealthMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the body or the database: refuses hostile bodies under /api/,
    # and makes every error answer there a problem (DEBUG's technical pages too).
    "productstudio.middleware.ApiProblemMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): whether this session passed the second factor.
    "django_otp.middleware.OTPMiddleware",
    "productstudio.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "productstudio.lib.csp.ContentSecurityPolicyMiddleware",
    # Last, so it turns django-axes' lockout flag into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "productstudio.urls"
WSGI_APPLICATION = "productstudio.wsgi.application"

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
                "accounts.context_processors.workspace",
            ],
        },
    },
]

# Database ------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'productstudio.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server (a failover, a dropped route) would hold a web thread, and
    # /readyz's check, for the TCP timeout (minutes): fail in seconds instead. The URL's
    # own `?connect_timeout=` wins.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # django-q2's ORM broker and the web server write to the same file: without WAL and
    # IMMEDIATE transactions SQLite answers "database is locked" and task results are lost
    # (measured: docs/django-q2.md).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    if "PYTEST_VERSION" in os.environ:
        # The test database on disk, not in memory: the browser tests' live server answers
        # several requests at once, and an in-memory database shared between threads locks
        # whole tables ("database table is locked") where a file in WAL mode waits.
        DATABASES["default"]["TEST"] = {
            "NAME": os.path.join(tempfile.gettempdir(), f"productstudio-test-{os.getpid()}.db")
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# Static and media files -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "media")))

# Media on an S3-compatible object store (AWS S3, MinIO, Garage, Ceph, R2, ...) when
# S3_BUCKET is set: every web and worker machine then sees the same files. Objects stay
# private; download links are presigned and expire after ASSET_URL_TTL_SECONDS.
S3_BUCKET = env("S3_BUCKET")
S3_ENDPOINT_URL = env("S3_ENDPOINT_URL")
S3_REGION = env("S3_REGION", "us-east-1")
S3_ACCESS_KEY_ID = env("S3_ACCESS_KEY_ID")
S3_SECRET_ACCESS_KEY = env("S3_SECRET_ACCESS_KEY")
S3_ADDRESSING_STYLE = env("S3_ADDRESSING_STYLE", "auto").strip().lower()
S3_CUSTOM_DOMAIN = env("S3_CUSTOM_DOMAIN")
if S3_ADDRESSING_STYLE not in {"auto", "path", "virtual"}:
    raise ImproperlyConfigured(
        f"S3_ADDRESSING_STYLE must be auto, path or virtual, not {S3_ADDRESSING_STYLE!r}."
    )
# boto3 would otherwise look for credentials and a region on the instance metadata service
# (169.254.169.254): keys are always explicit here, and nothing probes that address.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploads up to the fetch limit are accepted; Django refuses larger request bodies.
FETCH_MAX_BYTES = env_int("FETCH_MAX_BYTES", 25 * 1024 * 1024)
# The largest body of an API request or Stripe event that is not a multipart upload:
# larger ones are refused from their Content-Length, unread (productstudio/lib/parsers.py).
API_MAX_BODY_BYTES = env_positive_int("API_MAX_BODY_BYTES", 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(FETCH_MAX_BYTES + 1024 * 1024, API_MAX_BODY_BYTES)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Fetching product images ------------------------------------------------------------------
FETCH_TIMEOUT = float(env("FETCH_TIMEOUT", "20"))
# Hosts (names, addresses or CIDR ranges) that may be fetched although they resolve to a
# private, loopback or link-local address. For tests and local demos only.
FETCH_ALLOW_PRIVATE_HOSTS = env_list("FETCH_ALLOW_PRIVATE_HOSTS")
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 50_000_000)
# Memory per image (jobs/images.py): above IMAGE_LARGE_PIXELS a photo is accepted without
# decoding all its pixels, and a process decodes at most IMAGE_LARGE_DECODES such photos at
# once; the local engine works on at most IMAGE_WORK_MAX_SIDE pixels on the longest side.
IMAGE_LARGE_PIXELS = env_positive_int("IMAGE_LARGE_PIXELS", 16_000_000)
IMAGE_LARGE_DECODES = env_positive_int("IMAGE_LARGE_DECODES", 1)
IMAGE_WORK_MAX_SIDE = env_positive_int("IMAGE_WORK_MAX_SIDE", 3000)
# Threads the local engine's segmentation model may use per worker process; workers
# already run in parallel, so one keeps them from competing for the same cores.
LOCAL_ENGINE_THREADS = env_positive_int("LOCAL_ENGINE_THREADS", 1)

# Segmind -------------------------------------------------------------------------------
SEGMIND_API_KEY = env("SEGMIND_API_KEY")
SEGMIND_API_BASE = env("SEGMIND_API_BASE", "https://api.segmind.com").rstrip("/")
# Send a pasted product URL to Segmind as is (uploads always go as base64).
SEGMIND_PASS_URLS = env_bool("SEGMIND_PASS_URLS", True)
SEGMIND_SUBMIT_ATTEMPTS = env_int("SEGMIND_SUBMIT_ATTEMPTS", 4)
SEGMIND_MAX_CONNECTIONS = env_int("SEGMIND_MAX_CONNECTIONS", 50)
# Polling: the first poll soon after submit, then every interval until the state changes;
# a long request is polled every tenth of its time so far, up to the max interval.
SEGMIND_FIRST_POLL_SECONDS = float(env("SEGMIND_FIRST_POLL_SECONDS", "1.0"))
SEGMIND_POLL_INTERVAL_SECONDS = float(env("SEGMIND_POLL_INTERVAL_SECONDS", "1.0"))
SEGMIND_POLL_MAX_INTERVAL_SECONDS = float(env("SEGMIND_POLL_MAX_INTERVAL_SECONDS", "3.0"))
SEGMIND_POLL_MAX_ERRORS = env_int("SEGMIND_POLL_MAX_ERRORS", 8)
# Requests one dispatcher keeps in flight; more jobs wait, queued, for room.
SEGMIND_MAX_IN_FLIGHT = env_int("SEGMIND_MAX_IN_FLIGHT", 1000)
# Threads that read inputs and download outputs beside the dispatcher's event loop.
SEGMIND_DOWNLOAD_THREADS = env_int("SEGMIND_DOWNLOAD_THREADS", 4)
# Segmind's 406 (the account behind a key is out of credit) pauses dispatch with that
# key for this long; then one waiting job goes as a probe. Jobs that have waited longer
# than the limit fail, and their credits are given back.
SEGMIND_PAUSE_SECONDS = env_int("SEGMIND_PAUSE_SECONDS", 300)
SEGMIND_WAIT_LIMIT_SECONDS = env_int("SEGMIND_WAIT_LIMIT_SECONDS", 6 * 60 * 60)
# Requests the platform's key may send per sliding window (Segmind's plans: 5 or 50 a
# minute on its docs page, 60, 120, 500 or 1000 on its pricing page). Whether status polls
# count is not documented: off by default, since Segmind's own SDK polls every second,
# which a 5-a-minute key could not do if they counted. A 429 closes the key's gate for
# its Retry-After, at most SEGMIND_RETRY_AFTER_MAX_SECONDS (or a backoff without one);
# a job that waits to be sent longer than SEGMIND_RATE_WAIT_LIMIT_SECONDS fails, refunded.
SEGMIND_RATE_LIMIT = env_rate("SEGMIND_RATE_LIMIT", "50/min")
SEGMIND_RATE_LIMIT_COUNTS_POLLS = env_bool("SEGMIND_RATE_LIMIT_COUNTS_POLLS", False)
SEGMIND_RETRY_AFTER_MAX_SECONDS = env_int("SEGMIND_RETRY_AFTER_MAX_SECONDS", 300)
SEGMIND_RATE_WAIT_LIMIT_SECONDS = env_int("SEGMIND_RATE_WAIT_LIMIT_SECONDS", 6 * 60 * 60)
# What a Segmind job on the platform's key costs, in credits, for a model no operator has
# priced in the admin (which warns while any is unpriced): every Segmind call costs the
# platform money, so a new deployment must not give them away. At least 1; a model is made
# free on purpose with a price row of 0.
SEGMIND_DEFAULT_PRICE = env_positive_int("SEGMIND_DEFAULT_PRICE", 5)
# What a job run with the workspace's own Segmind key costs in platform credits.
SEGMIND_OWN_KEY_FEE = env_int("SEGMIND_OWN_KEY_FEE", 0)
# Encrypts the workspaces' own Segmind keys (a Fernet key); derived from SECRET_KEY
# when unset, so rotating SECRET_KEY then needs the keys entered again.
FIELD_ENCRYPTION_KEY = env("FIELD_ENCRYPTION_KEY")

# Credits: what a new workspace starts with, and buying more through Stripe Checkout
# (without both Stripe keys, the billing page says purchases go through the operator).
TRIAL_CREDITS = env_int("TRIAL_CREDITS", 20)
LOW_BALANCE_THRESHOLD = env_int("LOW_BALANCE_THRESHOLD", 10)
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
# Tests and local demos point the Stripe library at a fake on 127.0.0.1.
STRIPE_API_BASE = env("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
# Stripe's own default: events signed longer ago than this are refused.
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)

# Webhooks (Standard Webhooks) ------------------------------------------------------------
# Seconds a webhook's receiver has to answer (connect, send, first bytes of the answer);
# longer counts as a failed attempt.
WEBHOOK_TIMEOUT_SECONDS = float(env("WEBHOOK_TIMEOUT_SECONDS", "10"))
# A message is retried with backoff until this long after its event, then given up.
WEBHOOK_MAX_AGE_HOURS = env_int("WEBHOOK_MAX_AGE_HOURS", 24)
# Deliveries run in a django-q2 cluster of their own (`Q_CLUSTER_NAME=webhooks manage.py
# qcluster`), so a receiver that hangs never holds a worker that runs jobs. Its one sender
# posts this many deliveries at once, at most WEBHOOK_WORKSPACE_CONCURRENCY of them for
# one workspace: a hanging receiver costs its own workspace's deliveries, not others'.
WEBHOOK_Q_CLUSTER = "webhooks"
WEBHOOK_SENDER_THREADS = env_int("WEBHOOK_SENDER_THREADS", 16)
WEBHOOK_WORKSPACE_CONCURRENCY = env_int("WEBHOOK_WORKSPACE_CONCURRENCY", 2)
# Endpoints one workspace may have (each event is one delivery per endpoint).
WEBHOOK_MAX_ENDPOINTS = env_int("WEBHOOK_MAX_ENDPOINTS", 10)
for _name in ("WEBHOOK_SENDER_THREADS", "WEBHOOK_WORKSPACE_CONCURRENCY", "WEBHOOK_MAX_ENDPOINTS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")

# Email ---------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "ProductStudio <studio@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL


# Comma-separated, each "Name <email>" or a bare email: error reports, the email when
# Segmind refuses a key, and (with their names) whom the credits page says to ask for
# credits when Stripe is not set up; SUPPORT_EMAIL is asked when ADMINS is empty.
def _admin(item: str) -> tuple[str, str]:
    name, email = parseaddr(item)
    if "@" not in email:
        raise ImproperlyConfigured(f'ADMINS: {item!r} is neither an email nor "Name <email>".')
    return name, email


ADMINS = [_admin(item) for item in env_list("ADMINS")]
SUPPORT_EMAIL = env("SUPPORT_EMAIL")

# Invitations and password-reset links stay valid this long.
INVITATION_MAX_AGE_DAYS = env_int("INVITATION_MAX_AGE_DAYS", 7)
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
# A sign-up's link (the account is created when it is opened) stays valid this long.
SIGNUP_LINK_MAX_AGE_HOURS = env_positive_int("SIGNUP_LINK_MAX_AGE_HOURS", 24)

# Throttling ----------------------------------------------------------------------------
# Failed log-ins go through django-axes: maintained by Jazzband, its database handler keeps
# the counts in the database every web machine shares (no shared cache needed), operators
# see attempts and lockouts in the admin, and it announces lockouts as signals. It counts
# per account (the email, lower-cased) and per client address separately, each with its
# own limit (accounts/throttling.py); a lock lasts LOGIN_COOL_OFF_MINUTES from the last
# failure, and the right password is refused while it lasts.
LOGIN_FAILURE_LIMIT = env_positive_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_positive_int("LOGIN_ADDRESS_FAILURE_LIMIT", 20)
LOGIN_COOL_OFF_MINUTES = env_positive_int("LOGIN_COOL_OFF_MINUTES", 15)
# Behind N reverse proxies REMOTE_ADDR is the last proxy's: the client is then the N-th
# address from the right of X-Forwarded-For. 0 (the default) trusts no header.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
AUTHENTICATION_BACKENDS = [
    "accounts.throttling.LoginLockBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "accounts.throttling.LoginAttemptHandler"
AXES_FAILURE_LIMIT = "accounts.throttling.failure_limit"
AXES_LOCKOUT_PARAMETERS = [["username"], ["ip_address"]]
AXES_COOLOFF_TIME = "accounts.throttling.cool_off"
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "accounts.throttling.login_username"
AXES_CLIENT_IP_CALLABLE = "accounts.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
AXES_VERBOSE = False
# Password-reset requests and sign-ups, counted in the database (accounts.ThrottleCounter)
# for the same reason: every process sees one count. Each limit is per hour.
PASSWORD_RESET_ADDRESS_LIMIT = env_positive_int("PASSWORD_RESET_ADDRESS_LIMIT", 10)
PASSWORD_RESET_EMAIL_LIMIT = env_positive_int("PASSWORD_RESET_EMAIL_LIMIT", 3)
SIGNUP_ADDRESS_LIMIT = env_positive_int("SIGNUP_ADDRESS_LIMIT", 10)
SIGNUP_EMAIL_LIMIT = env_positive_int("SIGNUP_EMAIL_LIMIT", 3)
# Requests with a wrong API key from one address: at the limit within API_KEY_COOL_OFF_MINUTES,
# the address is refused (429, whatever key it sends) for API_KEY_COOL_OFF_MINUTES.
API_KEY_FAILURE_LIMIT = env_positive_int("API_KEY_FAILURE_LIMIT", 20)
API_KEY_COOL_OFF_MINUTES = env_positive_int("API_KEY_COOL_OFF_MINUTES", 15)

# django-q2 -----------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL")
Q_WORKERS = env_int("Q_WORKERS", 2)
# The API's rate-limit counters: shared by every web machine through Redis when there is
# one, else kept per process.
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
# A task that runs longer than this is killed. Jobs never wait on Segmind inside a task, so
# the longest task is one image fetch plus local image work.
Q_TIMEOUT = env_int("Q_TIMEOUT", 120)
# The Segmind dispatcher hands over to a fresh task after this long; the other half of the
# task timeout is left for the submits and downloads it finishes before it stops.
SEGMIND_DISPATCHER_SECONDS = float(env("SEGMIND_DISPATCHER_SECONDS", str(min(Q_TIMEOUT / 2, 55))))
# Each worker prefetches this many tasks; a fetched task waits for every task ahead of it.
Q_QUEUE_LIMIT = env_int("Q_QUEUE_LIMIT", Q_WORKERS * 2)
# The ORM broker redelivers a task that is not acknowledged within `retry`, and its clock
# starts when the task enters the prefetch queue: `retry` must cover the longest wait in
# that queue plus the task's own run, or a task still waiting is delivered a second time.
Q_LONGEST_QUEUE_WAIT = math.ceil(Q_QUEUE_LIMIT / Q_WORKERS) * Q_TIMEOUT
Q_RETRY = env_int("Q_RETRY", Q_TIMEOUT + Q_LONGEST_QUEUE_WAIT + 60)
# The site's name in django-q2 (its queue, and the salt that signs tasks). Not
# Q_CLUSTER_NAME: django-q2 reads that one itself to pick which cluster a `qcluster`
# process serves (unset: the jobs cluster; `webhooks`: the webhook sender's).
Q_NAME = env("Q_NAME", "productstudio")
Q_CLUSTER: dict[str, object] = {
    "name": Q_NAME,
    "workers": Q_WORKERS,
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "queue_limit": Q_QUEUE_LIMIT,
    # Failures are recorded on the job itself; an unacknowledged failure would be
    # redelivered forever.
    "ack_failures": True,
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 250,
    "label": "Task queue",
    # One worker: it runs the one webhook sender (a lease keeps it to one), which posts
    # many deliveries at once on threads; its tasks wait behind at most one more.
    "ALT_CLUSTERS": {
        WEBHOOK_Q_CLUSTER: {
            "workers": 1,
            "queue_limit": 1,
            "retry": Q_TIMEOUT * 2 + 60,
        }
    },
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.2

# REST framework --------------------------------------------------------------------------
# How long an `Idempotency-Key` and its answer are kept, and after how long a first request
# still marked in progress counts as dead (its transaction rolled back) and may be retried.
IDEMPOTENCY_KEY_HOURS = env_int("IDEMPOTENCY_KEY_HOURS", 24)
IDEMPOTENCY_LOCK_SECONDS = env_int("IDEMPOTENCY_LOCK_SECONDS", 300)
# Requests per API key (or signed-in person): "N/second|minute|hour|day".
API_RATE_LIMIT_READ = env("API_RATE_LIMIT_READ", "1200/min")
API_RATE_LIMIT_WRITE = env("API_RATE_LIMIT_WRITE", "300/min")

# The most jobs one batch (POST /api/v1/batches) may hold; their photos are fetched while
# the request waits, several at a time.
BATCH_MAX_ITEMS = env_int("BATCH_MAX_ITEMS", 100)
# How long the API's signed download URLs of assets stay valid.
ASSET_URL_TTL_SECONDS = env_positive_int("ASSET_URL_TTL_SECONDS", 3600)
# On S3 the links are the store's own presigned URLs, valid as long (S3_* above).
if S3_BUCKET:
    _missing = [n for n in ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY") if not globals()[n]]
    if _missing:
        raise ImproperlyConfigured(
            f"S3_BUCKET is set, so {' and '.join(_missing)} must be set too: the keys are "
            "always explicit (no instance metadata, no ~/.aws profile)."
        )
    from productstudio.lib.storage import s3_storage_options

    STORAGES["default"] = {
        "BACKEND": "productstudio.lib.storage.PrivateS3Storage",
        "OPTIONS": s3_storage_options(
            bucket=S3_BUCKET,
            endpoint_url=S3_ENDPOINT_URL,
            region=S3_REGION,
            access_key_id=S3_ACCESS_KEY_ID,
            secret_access_key=S3_SECRET_ACCESS_KEY,
            addressing_style=S3_ADDRESSING_STYLE,
            custom_domain=S3_CUSTOM_DOMAIN,
            url_ttl_seconds=ASSET_URL_TTL_SECONDS,
        ),
    }
# The most images one ZIP of the gallery's selection may hold (full images, built while
# the request waits).
GALLERY_ZIP_MAX_ASSETS = env_int("GALLERY_ZIP_MAX_ASSETS", 200)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "productstudio.lib.errors.problem_exception_handler",
    # JSON bodies only, but where a view says otherwise (a job's photo may be uploaded).
    # The JSON parser refuses bodies too large, too deep or not JSON, naming the problem.
    "DEFAULT_PARSER_CLASSES": ["productstudio.lib.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.authentication.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "productstudio.schema.ApiSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ProductStudio API",
    # With every error code, anchored at /api/docs/#error-<code> (a problem's `type`).
    "DESCRIPTION": API_DESCRIPTION,
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs' JavaScript and CSS come from the drf-spectacular-sidecar package.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Security ------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# Two factors (django-otp): the name authenticator apps show, and its throttling left on
# (each wrong code doubles the wait before the next try on that device).
OTP_TOTP_ISSUER = "ProductStudio"
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
# Every page's Content-Security-Policy (productstudio/lib/csp.py): scripts, styles, fonts and
# images from this site only (images also as data: and blob: URLs, which the new-job page's
# previews use); no inline script or style, no plugin, no framing. `form-action` is left
# out on purpose: buying credits redirects a form's POST to Stripe Checkout.
CSP_DIRECTIVES: dict[str, list[str]] = {
    "default-src": ["'self'"],
    "img-src": ["'self'", "data:", "blob:"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "frame-ancestors": ["'none'"],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Health and metrics (productstudio/health.py) ---------------------------------------------
# /readyz gives each check this long before it counts as failed.
READYZ_TIMEOUT_SECONDS = env_positive_float("READYZ_TIMEOUT_SECONDS", 2.0)
# Segmind work waiting while no dispatcher has held the lease for this long is reported.
DISPATCHER_STALE_SECONDS = env_positive_int("DISPATCHER_STALE_SECONDS", 90)
# /metrics is off (404) unless one of these is set; with both, a scrape needs both.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOW = env_list("METRICS_ALLOW")


def _networks(name: str, items: list[str]) -> list[str]:
    import ipaddress

    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is neither an IP address nor a CIDR range."
            ) from None
    return items


METRICS_ALLOW = _networks("METRICS_ALLOW", METRICS_ALLOW)
# django-prometheus's migration gauges query the database at start-up: not wanted.
PROMETHEUS_EXPORT_MIGRATIONS = False

# `text` (the default) or `json`: one JSON object a line with the request, workspace and
# job ids (productstudio/lib/logs.py).
LOG_FORMAT = env("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "productstudio.lib.context.LogContextFilter"}},
    "formatters": {"json": {"()": "productstudio.lib.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            **({"formatter": "json"} if LOG_FORMAT == "json" else {}),
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
if LOG_FORMAT == "json":
    # Python's warnings go to stderr as plain text otherwise: through logging, they are
    # JSON lines like the rest.
    logging.captureWarnings(True)
