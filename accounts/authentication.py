"""REST API authentication, a workspace's API key as `Authorization: Bearer <key>`, and
the rate limits per key.

Apart from the API's views: DRF imports it while its own views module loads (from the
DEFAULT_AUTHENTICATION_CLASSES setting), so it must not import DRF's views itself.
"""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling
from rest_framework.request import Request

from accounts import services
from accounts.models import ApiKey, ThrottleScope
from accounts.throttling import client_address


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
        # The idempotency middleware may have checked this very key already.
        key: ApiKey | None
        if hasattr(request._request, "api_key"):
            key = request._request.api_key
        else:
            key = services.api_key_authenticate(raw_key=raw_key.strip())
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
