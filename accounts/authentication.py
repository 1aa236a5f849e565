"""REST API authentication: a workspace's API key as `Authorization: Bearer <key>`.

Apart from the API's views: DRF imports it while its own views module loads (from the
DEFAULT_AUTHENTICATION_CLASSES setting), so it must not import DRF's views itself.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import services
from accounts.models import ApiKey


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates as the key's workspace; `request.auth` is the ApiKey."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw_key.strip():
            return None
        key = services.api_key_authenticate(raw_key=raw_key.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return (ApiKeyUser(key), key)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


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
