"""Workspaces' keys for the REST API."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from django.conf import settings
from django.db import models

from accounts.models.users import User
from accounts.models.workspaces import Tenant


class ApiKeyQuerySet(models.QuerySet["ApiKey"]):
    def for_tenant(self, tenant: Tenant) -> ApiKeyQuerySet:
        return self.filter(tenant=tenant)

    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)


API_KEY_PREFIX = "ps_"


class ApiKey(models.Model):
    """A workspace's key for the REST API: `ps_<prefix>_<secret>`, kept as prefix + HMAC."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64)
    created_by = models.ForeignKey(User, models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        """How the key is shown once created: enough to recognise it, nothing to use."""
        return f"{API_KEY_PREFIX}{self.prefix}_…"

    @staticmethod
    def digest_secret(secret: str) -> str:
        # Keyed with SECRET_KEY so a leaked database alone cannot be used to test guesses.
        key = f"productstudio.api-key:{settings.SECRET_KEY}".encode()
        return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.digest, self.digest_secret(secret))

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
