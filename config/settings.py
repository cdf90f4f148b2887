"""Madoguchi settings. Every knob comes from the environment (see README).

Defaults suit a laptop: SQLite under var/, SMTP to localhost:1025, the
django-q2 ORM broker, the local LINE fake on 127.0.0.1:8025.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MADOGUCHI_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set when REQUIRE_SECRET_KEY is true")
    SECRET_KEY = "insecure-dev-key-set-SECRET_KEY-in-production"
# Staff need a second factor (django-otp) to use the admin.
ADMIN_REQUIRE_OTP = env_bool("ADMIN_REQUIRE_OTP", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Absolute base URL used in links that leave the system (unsubscribe, mails).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- HTTPS ------------------------------------------------------------------
# Off by default so `make run` on http://127.0.0.1 works. In production
# HTTPS=true: plain http is redirected, cookies are sent over https only and
# browsers are told (HSTS) to use nothing else; `manage.py check --deploy`
# then reports nothing.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
# Behind a proxy that terminates TLS: it sets X-Forwarded-Proto (replacing
# any the client sent), and only then may the header say a request was https.
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Security headers -----------------------------------------------------
# Every response carries a Content-Security-Policy (django-csp): scripts
# only from our own static files, or inline with the request's nonce
# (`<script nonce="{{ request.csp_nonce }}">`), never an inline event
# handler; styles may be inline (the admin's and Chart.js's style
# attributes). No page may be framed (frame-ancestors, X-Frame-Options),
# and the browser gets no camera, microphone, location or payment.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), browsing-topics=()"
)

# --- Sessions ---------------------------------------------------------------
# A staff session that made no request for SESSION_IDLE_MINUTES is logged
# out. core.middleware.SessionIdleMiddleware pushes the expiry back at most
# once a minute while the session is used, not with a write on every request
# (SESSION_SAVE_EVERY_REQUEST stays off).
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 60, minimum=1)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60

INSTALLED_APPS = [
    "config.apps.MadoguchiAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "csp",
    "core",
    "crm",
    "tickets",
    "outreach",
    "crisis",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.security_headers.PermissionsPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "core.middleware.SessionIdleMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: turns a login refused for a lockout into the lockout page
    "axes.middleware.AxesMiddleware",
]

# --- Failed logins (django-axes) ----------------------------------------------
# LOGIN_FAILURE_LIMIT failed logins (a wrong password or a wrong one-time
# password) lock that account, and separately that address, for
# LOGIN_COOLOFF_MINUTES; the right password is refused meanwhile. Attempts
# are recorded (axes's access attempts and failures); a superuser unlocks
# early (core/login_security.py).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 30, minimum=1)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "core.login_security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "core.login_security.client_address"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'madoguchi.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Covering indexes (INCLUDE) serve PostgreSQL; SQLite builds the same
    # indexes without the extra columns, which is all the demo needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
    "DATABASE_PREPARED_STATEMENTS", True
):
    # PostgreSQL: parameters bound by the server, and a statement run a
    # second time on a connection is prepared once and reused, so the hot
    # paths (API writes, the delivery worker) are not planned again on every
    # call. Set false behind a pooler that cannot keep prepared statements
    # (PgBouncer in transaction mode before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=2
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Language and time ------------------------------------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

# Messages live in a signed cookie, never in the database: the one-time
# display of a new API key must not be stored server-side.
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.auth.HasApiKeyScope"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Madoguchi API",
    "DESCRIPTION": (
        "Store-site API: customers, orders, consent and inquiries. Authenticate with "
        "`Authorization: Bearer <api key>`. Every POST accepts an `Idempotency-Key` header."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI and ReDoc from the drf-spectacular-sidecar package (static
    # files), not a CDN: /api/docs/ works without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation's error answers, in the error shape (core.api.schema).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "core.choices.Channel",
        "ConsentChannelEnum": "crm.models.ConsentChannel",
        "OrderStatusEnum": "crm.models.OrderStatus",
        "PrefectureEnum": "crm.models.Prefecture",
        "LifecycleSegmentEnum": "crm.models.LifecycleSegment",
    },
}

# --- Worker (django-q2) ------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
Q_CLUSTER: dict[str, Any] = {
    "name": "madoguchi",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    # A task may run at most `timeout` seconds; it is handed out again after
    # `retry` seconds. timeout < retry, and correctness comes from the
    # delivery ledger, not from the queue.
    "timeout": env_int("Q_TIMEOUT", 120, minimum=1),
    "retry": env_int("Q_RETRY", 180, minimum=2),
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "label": "Django Q2",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
if Q_CLUSTER["timeout"] >= Q_CLUSTER["retry"]:
    raise ImproperlyConfigured("Q_TIMEOUT must be lower than Q_RETRY")

# --- Email ------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", 1025, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "support@shop.example.jp")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- LINE Messaging API -----------------------------------------------------
LINE_CHANNEL_ACCESS_TOKEN = env_str("LINE_CHANNEL_ACCESS_TOKEN", "dev-line-token")
LINE_CHANNEL_SECRET = env_str("LINE_CHANNEL_SECRET", "dev-line-secret")
LINE_API_HOST = env_str("LINE_API_HOST", "http://127.0.0.1:8025").rstrip("/")
LINE_CONNECT_TIMEOUT = env_int("LINE_CONNECT_TIMEOUT", 5, minimum=1)
LINE_READ_TIMEOUT = env_int("LINE_READ_TIMEOUT", 20, minimum=1)
# Requests per second, shared by all workers (LINE allows push 2,000/s and
# multicast 200/s; stay a little below).
LINE_PUSH_RATE = env_int("LINE_PUSH_RATE", 1500, minimum=1)
LINE_MULTICAST_RATE = env_int("LINE_MULTICAST_RATE", 150, minimum=1)

# --- Delivery worker (SPEC rule 10) ---------------------------------------------
QUIET_HOURS_START = env_int("QUIET_HOURS_START", 21, minimum=0)  # hour, Asia/Tokyo
QUIET_HOURS_END = env_int("QUIET_HOURS_END", 9, minimum=0)
DELIVERY_LEASE_SECONDS = env_int("DELIVERY_LEASE_SECONDS", 120, minimum=1)
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 10, minimum=1)
DELIVERY_BACKOFF_SECONDS = env_int("DELIVERY_BACKOFF_SECONDS", 30, minimum=0)
DELIVERY_BACKOFF_MAX_SECONDS = env_int("DELIVERY_BACKOFF_MAX_SECONDS", 3600, minimum=0)
EMAIL_BATCH_SIZE = env_int("EMAIL_BATCH_SIZE", 100, minimum=1)
EMAIL_RATE = env_int("EMAIL_RATE", 200, minimum=1)  # messages per second, all workers
# One dispatch task works a send at most this long, then hands over.
DISPATCH_TIME_BUDGET_SECONDS = env_int("DISPATCH_TIME_BUDGET_SECONDS", 50, minimum=1)
DISPATCH_PARALLELISM = env_int("DISPATCH_PARALLELISM", 2, minimum=1)
UNSUBSCRIBE_SALT = "madoguchi.unsubscribe"
CLICK_SALT = "madoguchi.click"  # tracked links (outreach.clicks)

# --- Shop identity (特定電子メール法: sender block of every marketing mail) --
SHOP_NAME = env_str("SHOP_NAME", "まどぐち雑貨店")
SHOP_COMPANY = env_str("SHOP_COMPANY", "株式会社まどぐち")
SHOP_POSTAL_ADDRESS = env_str("SHOP_POSTAL_ADDRESS", "〒150-0001 東京都渋谷区神宮前1-2-3")
SHOP_CONTACT_EMAIL = env_str("SHOP_CONTACT_EMAIL", DEFAULT_FROM_EMAIL)
SHOP_CONTACT_PHONE = env_str("SHOP_CONTACT_PHONE", "03-1234-5678")
SHOP_URL = env_url("SHOP_URL", "https://shop.example.jp")
# Where else customers can buy or reach the shop: the emergency broadcast
# (crisis) points them to the channels that work. Empty: not offered.
SHOP_LINE_URL = env_url("SHOP_LINE_URL", "https://line.me/R/ti/p/@madoguchi")  # 友だち追加
SHOP_RAKUTEN_URL = env_url("SHOP_RAKUTEN_URL", "https://www.rakuten.co.jp/madoguchi/")
SHOP_YAHOO_URL = env_url("SHOP_YAHOO_URL", "https://store.shopping.yahoo.co.jp/madoguchi/")
SHOP_AMAZON_URL = env_url("SHOP_AMAZON_URL", "https://www.amazon.co.jp/shops/madoguchi")

# --- CRM rules (SPEC rule 7, 8, 9) -----------------------------------------
LIFECYCLE_SLEEPING_DAYS = env_int("LIFECYCLE_SLEEPING_DAYS", 180, minimum=1)
LIFECYCLE_REGULAR_MIN_ORDERS = env_int("LIFECYCLE_REGULAR_MIN_ORDERS", 2, minimum=2)
LIFECYCLE_VIP_MIN_ORDERS = env_int("LIFECYCLE_VIP_MIN_ORDERS", 5, minimum=1)
LIFECYCLE_VIP_MIN_SPENT = env_int("LIFECYCLE_VIP_MIN_SPENT", 100_000, minimum=0)
CLAIMANT_SUGGEST_COMPLAINTS = env_int("CLAIMANT_SUGGEST_COMPLAINTS", 3, minimum=1)
CLAIMANT_SUGGEST_DAYS = env_int("CLAIMANT_SUGGEST_DAYS", 90, minimum=1)
CONSENT_LEDGER_RETENTION_DAYS = env_int("CONSENT_LEDGER_RETENTION_DAYS", 3 * 365, minimum=1)
# Personal data retention per sales channel (SPEC rules 9, 17): a buyer's
# personal data that channel gave is anonymised this many days after their
# last order on it was delivered (or placed, when no delivery is known);
# 0 keeps it. Amazon's data-protection policy: 30 days after delivery.
RETENTION_DAYS = {
    channel: env_int(f"RETENTION_DAYS_{channel.upper()}", default, minimum=0)
    for channel, default in (
        ("rakuten", 0),
        ("amazon", 30),
        ("yahoo", 0),
        ("own_site", 0),
        ("store", 0),
    )
}

# --- Inquiries (SPEC rules 1, 11) -------------------------------------------
# A customer writing to an inquiry closed longer ago than this opens a new,
# linked one instead of reopening it.
INQUIRY_REOPEN_DAYS = env_int("INQUIRY_REOPEN_DAYS", 14, minimum=0)
# The satisfaction survey's links (email) and buttons (LINE) work for this
# many days after an inquiry is resolved.
CSAT_LINK_DAYS = env_int("CSAT_LINK_DAYS", 14, minimum=1)
CSAT_SALT = "madoguchi.csat"
# The inquiry page warns of another agent's reply made this recently.
INQUIRY_COLLISION_MINUTES = env_int("INQUIRY_COLLISION_MINUTES", 10, minimum=1)
# Triage (状況確認, SPEC rule 2): category and assignee set within this many
# minutes of the inquiry's SLA clock, or the inbox shows it and the SLA watch
# warns the assignee (else the managers) once.
TRIAGE_TARGET_MINUTES = env_int("TRIAGE_TARGET_MINUTES", 30, minimum=1)
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024, minimum=0)
# A mail larger than this is recorded by its header alone (sender, subject,
# Message-ID) as failed, not read; reading one takes about twice its size.
MAIL_MAX_MESSAGE_BYTES = env_int("MAIL_MAX_MESSAGE_BYTES", 25 * 1024 * 1024, minimum=1)
# Reading one mail may take this long; past it the mail is recorded as
# failed (raw bytes kept) and the next one is read.
MAIL_PARSE_SECONDS = env_int("MAIL_PARSE_SECONDS", 20, minimum=1)
MEDIA_ROOT = VAR_DIR / "media"
# Inbound mail by IMAP polling (off unless IMAP_HOST is set).
IMAP_HOST = env_str("IMAP_HOST", "")
IMAP_PORT = env_int("IMAP_PORT", 993, minimum=1)
IMAP_USER = env_str("IMAP_USER", "")
IMAP_PASSWORD = env_str("IMAP_PASSWORD", "")
IMAP_MAILBOX = env_str("IMAP_MAILBOX", "INBOX")
IMAP_SSL = env_bool("IMAP_SSL", True)
IMAP_TIMEOUT = env_int("IMAP_TIMEOUT", 30, minimum=1)
# Addresses that are ours besides DEFAULT_FROM_EMAIL, SERVER_EMAIL,
# SHOP_CONTACT_EMAIL and IMAP_USER (aliases, a forwarder's address): mail
# from them is never an inquiry, and no acknowledgement goes to them.
MAIL_OWN_ADDRESSES = env_list("MAIL_OWN_ADDRESSES", [])
# Bounces (VERP): every mail of the delivery ledger goes out with the
# envelope sender BOUNCE_LOCAL_PART+<delivery>-<tag>@BOUNCE_DOMAIN (the
# sender's domain when empty); mail to it must reach the inbound pipe or
# mailbox. A hard bounce suppresses the address at once, BOUNCE_SOFT_LIMIT
# soft ones within BOUNCE_SOFT_DAYS too.
BOUNCE_DOMAIN = env_str("BOUNCE_DOMAIN", "")
BOUNCE_LOCAL_PART = env_str("BOUNCE_LOCAL_PART", "bounces")
BOUNCE_SOFT_LIMIT = env_int("BOUNCE_SOFT_LIMIT", 3, minimum=1)
BOUNCE_SOFT_DAYS = env_int("BOUNCE_SOFT_DAYS", 30, minimum=1)
# At most this many automatic acknowledgements to one address in the window
# (a loop with a mailer that ignores Auto-Submitted stops there).
ACKNOWLEDGEMENT_MAX_PER_ADDRESS = env_int("ACKNOWLEDGEMENT_MAX_PER_ADDRESS", 3, minimum=1)
ACKNOWLEDGEMENT_WINDOW_MINUTES = env_int("ACKNOWLEDGEMENT_WINDOW_MINUTES", 60, minimum=1)
# Mall inquiries come through the malls' mail relays: sender domain → channel.
MALL_RELAY_DOMAINS = {
    "marketplace.amazon.co.jp": "amazon",
    "fw.rakuten.ne.jp": "rakuten",
    "shopping.yahoo.co.jp": "yahoo",
}
MEDIA_URL = "media/"

# --- API --------------------------------------------------------------------
API_IDEMPOTENCY_RETENTION_HOURS = env_int("API_IDEMPOTENCY_RETENTION_HOURS", 48, minimum=1)
API_KEY_TOUCH_SECONDS = env_int("API_KEY_TOUCH_SECONDS", 60, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
