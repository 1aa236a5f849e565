"""Shops' workspaces (tenants), their members and roles, and the Segmind plans a
workspace's own key may be on."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models.users import User


class TenantQuerySet(models.QuerySet["Tenant"]):
    def for_user(self, user: User) -> TenantQuerySet:
        return self.filter(memberships__user=user)


def default_low_balance_threshold() -> int:
    return int(settings.LOW_BALANCE_THRESHOLD)


class SegmindPlan(models.TextChoices):
    """Segmind's plans and their requests a minute per key. Segmind's docs page and its
    pricing page disagree, so both are offered, each named after its page."""

    FREE = "free", "Free: 5 a minute (Segmind's docs)"
    PRO_DOCS = "pro-docs", "Pro: 50 a minute (Segmind's docs)"
    FLEXIBLE = "flexible", "Flexible: 60 a minute (Segmind's pricing page)"
    PRO = "pro", "Pro: 120 a minute (Segmind's pricing page)"
    BUSINESS = "business", "Business: 500 a minute (Segmind's pricing page)"
    SCALE = "scale", "Scale: 1000 a minute (Segmind's pricing page)"
    CUSTOM = "custom", "Another limit (requests a minute)"


SEGMIND_PLAN_PER_MINUTE = {
    SegmindPlan.FREE: 5,
    SegmindPlan.PRO_DOCS: 50,
    SegmindPlan.FLEXIBLE: 60,
    SegmindPlan.PRO: 120,
    SegmindPlan.BUSINESS: 500,
    SegmindPlan.SCALE: 1000,
}
# An own key whose plan the shop has not chosen is paced as the docs' Pro plan: a key
# allowed less converges there after a few 429s, which never fail a job.
SEGMIND_DEFAULT_PLAN = SegmindPlan.PRO_DOCS
SEGMIND_CUSTOM_MAX_PER_MINUTE = 100_000


class Tenant(models.Model):
    """A shop's workspace: every job, asset and credit belongs to one."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=60, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The ledger's running totals, kept in the same transaction as each entry (see
    # `CreditEntry`): credits the shop can spend, and credits held by running jobs.
    credit_balance = models.IntegerField(default=0)
    credit_held = models.IntegerField(default=0)
    # Below this balance the portal warns and the owners get one email (sent again only
    # after the balance has been back above it): see `credits_low_check`.
    low_balance_threshold = models.PositiveIntegerField(default=default_low_balance_threshold)
    low_balance_notified_at = models.DateTimeField(null=True, blank=True)
    # The workspace's own Segmind key ("bring your own key"), encrypted at rest; only its
    # last four characters are ever shown back.
    segmind_key_encrypted = models.TextField(blank=True)
    segmind_key_last4 = models.CharField(max_length=4, blank=True)
    segmind_key_set_at = models.DateTimeField(null=True, blank=True)
    # The plan of that key, which sets how many requests a minute the dispatcher sends
    # with it; `segmind_rate_limit` is the number for a custom limit.
    segmind_plan = models.CharField(
        max_length=20, choices=SegmindPlan.choices, default=SEGMIND_DEFAULT_PLAN
    )
    segmind_rate_limit = models.PositiveIntegerField(default=0)
    # Signs the webhooks sent to jobs' own `webhook_url`s (endpoints have their own
    # secrets), encrypted at rest; made the first time it is needed.
    webhook_secret_encrypted = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(credit_balance__gte=0), name="tenant_credit_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(credit_held__gte=0), name="tenant_credit_held_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_own_segmind_key(self) -> bool:
        return bool(self.segmind_key_encrypted)

    @property
    def segmind_per_minute(self) -> int:
        """Requests a minute the workspace's own key may send (its plan's, or its own)."""
        if self.segmind_plan == SegmindPlan.CUSTOM and self.segmind_rate_limit > 0:
            return int(self.segmind_rate_limit)
        return SEGMIND_PLAN_PER_MINUTE.get(
            SegmindPlan(self.segmind_plan)
            if self.segmind_plan in SegmindPlan.values
            else SEGMIND_DEFAULT_PLAN,
            SEGMIND_PLAN_PER_MINUTE[SEGMIND_DEFAULT_PLAN],
        )

    @property
    def is_low_on_credits(self) -> bool:
        return self.credit_balance < self.low_balance_threshold


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class MembershipQuerySet(models.QuerySet["Membership"]):
    def for_tenant(self, tenant: Tenant) -> MembershipQuerySet:
        return self.filter(tenant=tenant)

    def owners(self) -> MembershipQuerySet:
        return self.filter(role=Role.OWNER)


class Membership(models.Model):
    user = models.ForeignKey(User, models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="unique_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"

    @property
    def can_manage_team(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def is_last_owner(self) -> bool:
        """An owner and its workspace's only one: a workspace keeps an owner, so this
        membership can be neither demoted nor removed."""
        if not self.is_owner:
            return False
        others = Membership.objects.filter(tenant_id=self.tenant_id).owners().exclude(pk=self.pk)
        return not others.exists()
