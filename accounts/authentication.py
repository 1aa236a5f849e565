"""REST API authentication, a workspace's API key as `Authorization: Bearer <key>`, and
the rate limits per key.

Apart from the API's views: DRF imports it while its own views module loads (from the
DEFAULT_AUTHENTICATION_CLASSES setting), so it must not import DRF's views itself.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling
from rest_framework.request import Request

from accounts import services
from accounts.models import ApiKey, Tenant, ThrottleScope
from accounts.throttling import client_address
from productstudio.lib.context import workspace_bind


def request_api_key(request: HttpRequest) -> ApiKey | None:
    """The request's `Authorization: Bearer` key if it is a live one, checked once per
    request: the idempotency middleware and the API's authentication share the answer."""
    if not hasattr(request, "api_key"):
        scheme, _, raw_key = request.headers.get("Authorization", "").partition(" ")
        key = None
        if scheme.lower() == "bearer" and raw_key.strip():
            key = services.api_key_authenticate(raw_key=raw_key.strip())
        request.api_key = key  # type: ignore[attr-defined]
    return request.api_key  # type: ignore[attr-defined]


def request_workspace(request: HttpRequest | Request) -> Tenant | None:
    """The workspace a request acts for, the one place this is decided: an API key's
    workspace, or for a signed-in person the workspace they last opened in the portal
    (None for anyone else). Remembered on the request, so the idempotency middleware,
    the API's views and its prices all see the same answer for one query."""
    http = request._request if isinstance(request, Request) else request
    if "_workspace" in http.__dict__:
        return http.__dict__["_workspace"]
    tenant: Tenant | None = None
    user = request.user if isinstance(request, Request) else getattr(http, "user", None)
    if isinstance(user, ApiKeyUser):
        tenant = user.tenant
    elif http.headers.get("Authorization", "").lower().startswith("bearer "):
        key = request_api_key(http)
        tenant = key.tenant if key else None
    elif user is not None and user.is_authenticated:
        slug = http.session.get("workspace") if hasattr(http, "session") else None
        if slug:
            tenant = Tenant.objects.for_user(user).filter(slug=slug).first()  # type: ignore[arg-type]
    http.__dict__["_workspace"] = tenant
    if tenant is not None:
        workspace_bind(tenant.pk)
    return tenant


def request_workspace_required(request: Request) -> Tenant:
    """`request_workspace`, or a 404 that says how to get one."""
    tenant = request_workspace(request)
    if tenant is None:
        raise exceptions.NotFound("Open a workspace in the portal first, or use an API key.")
    return tenant


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates as the key's workspace; `request.auth` is the ApiKey."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw_key.strip():
            return None
        # An address that sent too many wrong keys is refused whatever key it sends now,
        # so guessing cannot go on with a good key in between to reset the count.
        address = client_address(request._request)
        wait = services.throttle_wait(scope=ThrottleScope.API_KEY_ADDRESS, key=address)
        if wait:
            raise ApiKeysLocked(wait)
        key = request_api_key(request._request)
        if key is None:
            cool_off = settings.API_KEY_COOL_OFF_MINUTES * 60
            services.throttle_count(
                scope=ThrottleScope.API_KEY_ADDRESS,
                key=address,
                limit=settings.API_KEY_FAILURE_LIMIT,
                window_seconds=cool_off,
                lock_seconds=cool_off,
            )
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        workspace_bind(key.tenant_id)
        return (ApiKeyUser(key), key)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeysLocked(exceptions.Throttled):
    """Too many wrong API keys from one address: 429 with Retry-After, for any key."""

    def __init__(self, wait: int) -> None:
        super().__init__(
            wait=wait,
            detail="Too many requests with a wrong API key from your address: every request "
            "from it is refused until the cool-off ends.",
        )


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (or signed-in person): API_RATE_LIMIT_READ for reads,
    API_RATE_LIMIT_WRITE for writes, read from the settings at each request."""

    def __init__(self) -> None:
        pass  # the scope, hence the rate, depends on the request: see allow_request

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str:
        if self.scope == "read":
            return str(settings.API_RATE_LIMIT_READ)
        return str(settings.API_RATE_LIMIT_WRITE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"


class ApiKeyUser:
    """The caller behind an API key: authenticated, but not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    pk = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.tenant = key.tenant

    def __str__(self) -> str:
        return f"API key {self.key.prefix}"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the schema describes the API key: a bearer token."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A workspace's API key, `ps_<prefix>_<secret>`.",
        }
