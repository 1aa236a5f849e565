"""Workspaces: create, rename, Segmind plan."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from accounts.models import (
    SEGMIND_CUSTOM_MAX_PER_MINUTE,
    CreditKind,
    Membership,
    Role,
    SegmindPlan,
    Tenant,
    User,
)
from accounts.services.credits import _credit_append
from accounts.services.members import AccountError, _actor


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "workspace"
    slug = base
    while Tenant.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def tenant_create(*, name: str, owner: User) -> Tenant:
    """Create a workspace, make `owner` its owner, and grant it the trial credits."""
    name = name.strip()
    if not name:
        raise AccountError("invalid_name", "name: a workspace needs a name.")
    with transaction.atomic():
        tenant = Tenant.objects.create(name=name[:100], slug=_unique_slug(name))
        Membership.objects.create(user=owner, tenant=tenant, role=Role.OWNER)
        if settings.TRIAL_CREDITS > 0:
            entry = _credit_append(
                tenant_id=tenant.pk,
                kind=CreditKind.GRANT,
                amount=settings.TRIAL_CREDITS,
                memo="Trial credits",
            )
            tenant.credit_balance = entry.balance_after
    return tenant


def tenant_rename(*, tenant: Tenant, by: User, name: str) -> Tenant:
    """Rename a workspace; its slug, and so every URL and API key, stays the same."""
    name = name.strip()
    if not name:
        raise AccountError("invalid_name", "name: a workspace needs a name.")
    if len(name) > 100:
        raise AccountError("invalid_name", "name: at most 100 characters.")
    if not _actor(tenant, by).can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can rename the workspace.")
    Tenant.objects.filter(pk=tenant.pk).update(name=name)
    tenant.name = name
    return tenant


def tenant_segmind_plan_set(
    *, tenant: Tenant, by: User, plan: str, per_minute: int | None = None
) -> Tenant:
    """Set the plan of the workspace's own Segmind key, which paces the requests sent with
    it (`per_minute` for a custom limit). Owners and admins only. The dispatcher reads it
    when it next starts (within about a minute)."""
    if not _actor(tenant, by).can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can change the Segmind plan.")
    if plan not in SegmindPlan.values:
        raise AccountError("invalid_plan", "segmind_plan: choose one of Segmind's plans.")
    limit = 0
    if plan == SegmindPlan.CUSTOM:
        if per_minute is None or not 1 <= per_minute <= SEGMIND_CUSTOM_MAX_PER_MINUTE:
            raise AccountError(
                "invalid_rate_limit",
                "segmind_rate_limit: give your key's limit in requests a minute "
                f"(1 to {SEGMIND_CUSTOM_MAX_PER_MINUTE}).",
            )
        limit = per_minute
    Tenant.objects.filter(pk=tenant.pk).update(segmind_plan=plan, segmind_rate_limit=limit)
    tenant.segmind_plan, tenant.segmind_rate_limit = plan, limit
    return tenant
