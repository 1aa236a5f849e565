"""The operators' audit trail: append-only."""

from __future__ import annotations

from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from accounts.models.users import User
from accounts.models.workspaces import Tenant


class OperatorActionCode(models.TextChoices):
    """What an operator did in the admin that changed money or a workspace's standing."""

    CREDITS_GRANT = "credits_grant", "Credits granted"
    CREDITS_ADJUST = "credits_adjust", "Balance adjusted"
    CREDITS_REFUND = "credits_refund", "Job refunded"
    PAUSE_CLEAR = "pause_clear", "Segmind pause cleared"
    LOCK_LIFT = "lock_lift", "Log-in lock lifted"
    ROLE_CHANGE = "role_change", "Role changed"
    MEMBER_ADD = "member_add", "Member added"
    MEMBER_REMOVE = "member_remove", "Member removed"
    TWO_FACTOR_RESET = "two_factor_reset", "Two-factor reset"
    API_KEY_REVOKE = "api_key_revoke", "API key revoked"
    SEGMIND_PLAN_CHANGE = "segmind_plan_change", "Segmind plan changed"
    USER_STANDING_CHANGE = "user_standing_change", "User's standing changed"
    PRICE_CHANGE = "price_change", "Price changed"


class OperatorActionImmutable(Exception):
    """The audit trail is append-only: a row is never changed or deleted."""


class OperatorActionQuerySet(models.QuerySet["OperatorAction"]):
    def for_tenant(self, tenant: Tenant) -> OperatorActionQuerySet:
        return self.filter(tenant=tenant)

    def update(self, **kwargs: Any) -> int:
        # The one update allowed is the one Django makes when the actor or the workspace
        # is deleted (SET_NULL): the copied email, name and slug keep the row readable.
        if (
            kwargs
            and set(kwargs) <= {"actor", "tenant"}
            and all(v is None for v in kwargs.values())
        ):
            return super().update(**kwargs)
        raise OperatorActionImmutable("Operator actions are append-only: they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise OperatorActionImmutable("Operator actions are append-only: they cannot be deleted.")


class OperatorAction(models.Model):
    """One row of the operators' audit trail: who did what to which workspace, when and
    why. Written by `operator_action_record` in the same transaction as the change;
    never changed or deleted (`save` and `delete` refuse, and so does the QuerySet)."""

    actor = models.ForeignKey(
        User, models.SET_NULL, null=True, blank=True, related_name="operator_actions"
    )
    # Copied so the trail still says who after the user or the workspace is deleted.
    actor_email = models.EmailField()
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40, choices=OperatorActionCode.choices)
    tenant = models.ForeignKey(
        Tenant, models.SET_NULL, null=True, blank=True, related_name="operator_actions"
    )
    tenant_name = models.CharField(max_length=100, blank=True)
    tenant_slug = models.CharField(max_length=60, blank=True)
    target = models.CharField(max_length=300, blank=True)
    # Amounts are whole credits (ints), stored as JSON numbers: exact.
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    reason = models.TextField()

    objects = OperatorActionQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["tenant", "at"]), models.Index(fields=["action", "at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="operator_action_has_a_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor_email} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise OperatorActionImmutable(
                "Operator actions are append-only: a row is never changed."
            )
        # Always an INSERT: a new object given an existing row's id fails instead of
        # overwriting that row.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise OperatorActionImmutable("Operator actions are append-only: a row is never deleted.")
