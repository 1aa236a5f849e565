"""Account operations: sign-up, workspaces, invitations, roles, API keys, credits (the
ledger, the low-balance warning, buying packs through Stripe Checkout), and the
workspace's webhooks (Standard Webhooks: endpoints, signing, delivery with retries).

Views, commands and admin actions call these; they hold the rules (who may do what,
the last owner stays) so every door enforces the same ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncMonth
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import (
    API_KEY_PREFIX,
    JOB_EVENT_TYPES,
    SEGMIND_CUSTOM_MAX_PER_MINUTE,
    SUBSCRIBABLE_EVENT_TYPES,
    ApiKey,
    CheckoutSession,
    CheckoutStatus,
    CreditEntry,
    CreditEntryQuerySet,
    CreditKind,
    CreditPack,
    DeliveryStatus,
    IdempotencyKey,
    Invitation,
    Membership,
    OperatorAction,
    OperatorActionCode,
    PendingSignup,
    Role,
    SegmindPlan,
    StripeEvent,
    Tenant,
    ThrottleCounter,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from productstudio.lib.errors import CodedError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import stripe
    from stripe.params.checkout import SessionCreateParams

    from jobs.models import Job


class AccountError(CodedError):
    """A refused account operation, with a message for the person who asked."""


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


def user_signup(*, email: str, password: str, workspace_name: str, name: str = "") -> User:
    """Create a user with a workspace of their own, owned by them."""
    email = email.strip().lower()
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise AccountError("email_taken", "email: an account with this email already exists.")
        user = User.objects.create_user(email=email, password=password, name=name.strip())
        tenant_create(name=workspace_name, owner=user)
    return user


def _signup_url(token: str) -> str:
    return settings.SITE_URL + reverse("signup_confirm", args=[token])


def signup_request(*, email: str, password: str, workspace_name: str, name: str = "") -> None:
    """Start a sign-up without telling the visitor whether `email` has an account: a free
    email gets a link that creates the account and its workspace; a taken one gets a note
    to its owner instead. The visitor sees the same answer either way."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        send_mail(
            subject="Someone tried to sign up with your address on ProductStudio",
            message=render_to_string(
                "accounts/email/signup_taken.txt",
                {
                    "login_url": settings.SITE_URL + reverse("login"),
                    "reset_url": settings.SITE_URL + reverse("password_reset"),
                },
            ),
            from_email=None,
            recipient_list=[email],
        )
        return
    token = secrets.token_urlsafe(32)
    PendingSignup.objects.create(
        email=email,
        name=name.strip(),
        workspace_name=workspace_name.strip(),
        password_hash=make_password(password),
        token_digest=PendingSignup.digest(token),
    )
    send_mail(
        subject="Finish creating your ProductStudio workspace",
        message=render_to_string(
            "accounts/email/signup_link.txt",
            {
                "url": _signup_url(token),
                "workspace_name": workspace_name.strip(),
                "hours": settings.SIGNUP_LINK_MAX_AGE_HOURS,
            },
        ),
        from_email=None,
        recipient_list=[email],
    )


def signup_lookup(*, token: str) -> PendingSignup:
    """The sign-up behind a link's token, or an AccountError."""
    pending = PendingSignup.objects.filter(token_digest=PendingSignup.digest(token)).first()
    if pending is None or pending.completed_at is not None:
        raise AccountError(
            "invalid_signup", "This sign-up link is not valid any more: log in, or sign up again."
        )
    if pending.is_expired:
        raise AccountError("expired_signup", "This sign-up link has expired: sign up again.")
    return pending


def signup_complete(*, token: str) -> User:
    """Create the account and workspace of a pending sign-up (its email link proves the
    address); once per link."""
    with transaction.atomic():
        pending = signup_lookup(token=token)
        # The row is taken first, so two clicks of one link create one account.
        claimed = PendingSignup.objects.filter(pk=pending.pk, completed_at__isnull=True).update(
            completed_at=timezone.now()
        )
        if not claimed:
            raise AccountError(
                "invalid_signup", "This sign-up link was already used: log in to your workspace."
            )
        if User.objects.filter(email__iexact=pending.email).exists():
            raise AccountError(
                "email_taken", "This email already has an account: log in, or reset its password."
            )
        try:
            with transaction.atomic():
                user = User.objects.create_user(email=pending.email, name=pending.name)
        except IntegrityError:
            raise AccountError(
                "email_taken", "This email already has an account: log in, or reset its password."
            ) from None
        user.password = pending.password_hash
        user.save(update_fields=["password"])
        tenant_create(name=pending.workspace_name, owner=user)
    return user


def throttle_wait(*, scope: str, key: str) -> int:
    """Seconds `key` stays locked in `scope` (0: not locked)."""
    now = timezone.now()
    counter = ThrottleCounter.objects.filter(scope=scope, key=key, locked_until__gt=now).first()
    return counter.lock_seconds_left(now) if counter else 0


def throttle_count(
    *, scope: str, key: str, limit: int, window_seconds: int, lock_seconds: int | None = None
) -> int:
    """Count one request of `key` in `scope`. The count reaching `limit` within the window
    locks the key for `lock_seconds` (None: until the window ends). Returns the seconds it
    is now locked for (0: still under its limit). Atomic updates of one row per key, so
    concurrent requests from any process are all counted."""
    now = timezone.now()
    counters = ThrottleCounter.objects.filter(scope=scope, key=key)
    with transaction.atomic():
        # A window that has run out, and no lock left: start afresh.
        restarted = (
            counters.filter(window_started_at__lte=now - timedelta(seconds=window_seconds))
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            .update(count=1, window_started_at=now, locked_until=None)
        )
        if not restarted and not counters.update(count=F("count") + 1):
            try:
                with transaction.atomic():
                    ThrottleCounter.objects.create(
                        scope=scope, key=key, count=1, window_started_at=now
                    )
            except IntegrityError:  # another request created it first
                counters.update(count=F("count") + 1)
        counter = counters.get()
        if counter.count >= limit and not (counter.locked_until and counter.locked_until > now):
            if lock_seconds is None:
                until = counter.window_started_at + timedelta(seconds=window_seconds)
            else:
                until = now + timedelta(seconds=lock_seconds)
            counters.update(locked_until=until)
            counter.locked_until = until
    return counter.lock_seconds_left(now)


def throttle_admit(*, scope: str, key: str, limit: int, window_seconds: int) -> int:
    """Admit and count one request, or refuse it: returns 0 when admitted, else the
    seconds until the key may ask again. At most `limit` requests a window."""
    wait = throttle_wait(scope=scope, key=key)
    if wait:
        return wait
    throttle_count(scope=scope, key=key, limit=limit, window_seconds=window_seconds)
    return 0


def throttle_lock_lift(*, actor: User, counter_ids: Iterable[int], reason: str) -> int:
    """An operator lifts reset, sign-up or API-key locks: the counters start afresh."""
    counters = ThrottleCounter.objects.filter(pk__in=list(counter_ids))
    with transaction.atomic():
        described = [str(counter) for counter in counters]
        if not described:
            return 0
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.LOCK_LIFT,
            target=", ".join(described),
            details={"counters": described},
            reason=reason,
        )
        deleted, _ = counters.delete()
    logger.info("%s lifted throttle locks %s: %s", actor, described, reason)
    return deleted


def login_failures_forget(*, email: str) -> int:
    """A password was just reset through its emailed link: the account's failed log-ins no
    longer count, so the lockout's "or reset your password" is true. The addresses' own
    counts stay. Returns the attempts removed."""
    from axes.models import AccessAttempt

    deleted, _ = AccessAttempt.objects.filter(username=email.strip().lower()).delete()
    return deleted


def login_lock_lift(*, actor: User, attempt_ids: Iterable[int], reason: str) -> int:
    """An operator lifts log-in locks (django-axes' failed attempts). An account's count
    and an address's count each add up the attempts of every row with that account or
    address, so the attempts of the selected rows' accounts and addresses all go; the next
    failure starts from one. Returns the attempts removed."""
    from axes.models import AccessAttempt

    selected = list(
        AccessAttempt.objects.filter(pk__in=list(attempt_ids)).values_list("username", "ip_address")
    )
    if not selected:
        return 0
    usernames = {username for username, _ in selected if username}
    addresses = {address for _, address in selected if address}
    with transaction.atomic():
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.LOCK_LIFT,
            target=", ".join([*sorted(usernames), *sorted(addresses)]),
            details={"accounts": sorted(usernames), "addresses": sorted(addresses)},
            reason=reason,
        )
        deleted, _ = AccessAttempt.objects.filter(
            Q(pk__in=list(attempt_ids)) | Q(username__in=usernames) | Q(ip_address__in=addresses)
        ).delete()
    logger.info(
        "%s lifted log-in locks of %s and %s: %s",
        actor,
        sorted(usernames),
        sorted(addresses),
        reason,
    )
    return deleted


def _invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("invitation_accept", args=[token])


# A resend emails a new link; one a minute per invitation keeps the button from being
# used to flood someone's inbox.
INVITATION_RESEND_SECONDS = 60


def _invitation_email(*, invitation: Invitation, token: str, inviter: User) -> None:
    context = {
        "tenant": invitation.tenant,
        "inviter": inviter,
        "url": _invitation_url(token),
        "days": settings.INVITATION_MAX_AGE_DAYS,
    }
    send_mail(
        subject=f"You're invited to {invitation.tenant.name} on ProductStudio",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )


def invitation_create(
    *, tenant: Tenant, invited_by: User, email: str, role: str = Role.MEMBER
) -> tuple[Invitation, str]:
    """Invite `email` to `tenant` and email them the link; returns the invitation and token."""
    email = email.strip().lower()
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    inviter = Membership.objects.for_tenant(tenant).filter(user=invited_by).first()
    if inviter is None or not inviter.can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can invite people.")
    if role == Role.OWNER and not inviter.is_owner:
        raise AccountError("forbidden", "role: only an owner can invite another owner.")
    if Membership.objects.for_tenant(tenant).filter(user__email__iexact=email).exists():
        raise AccountError("already_member", f"email: {email} is already in this workspace.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_digest=Invitation.digest(token),
        invited_by=invited_by,
    )
    _invitation_email(invitation=invitation, token=token, inviter=invited_by)
    return invitation, token


def invitation_lookup(*, token: str) -> Invitation:
    """The pending invitation behind a link's token, or an AccountError. Unknown, used and
    withdrawn links get the same answer, so a link tells nothing about what it was."""
    invitation = Invitation.objects.by_token(token).select_related("tenant").first()
    if invitation is None or invitation.accepted_at is not None:
        raise AccountError("invalid_invitation", "This invitation link is not valid any more.")
    if invitation.is_expired:
        raise AccountError("expired_invitation", "This invitation has expired: ask for a new one.")
    return invitation


WRONG_INVITEE_MESSAGE = (
    "This invitation is for another email address: log out and open the link again to "
    "continue as the person it was sent to."
)


def invitation_accept(*, token: str, user: User) -> Membership:
    """Add `user` to the invitation's workspace, if the invitation names their email
    (case-insensitively); once: a second use of the link is refused. Anyone else is
    refused and nothing changes: the invitation stays usable by its invitee."""
    with transaction.atomic():
        invitation = invitation_lookup(token=token)
        if not invitation.is_for(user):
            raise AccountError("wrong_invitee", WRONG_INVITEE_MESSAGE)
        # A conditional update claims the invitation, so two clicks cannot both use it.
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now()
        )
        if not claimed:
            raise AccountError("invalid_invitation", "This invitation link is not valid any more.")
        membership, _ = Membership.objects.get_or_create(
            user=user, tenant=invitation.tenant, defaults={"role": invitation.role}
        )
    return membership


def invitation_signup(
    *, token: str, password: str, name: str = "", email: str | None = None
) -> User:
    """Create the invited person's account and accept the invitation. The account's email
    is the invited one; an `email` given (what a form posted) must be that one."""
    invitation = invitation_lookup(token=token)
    if email is not None and email.strip().lower() != invitation.email.strip().lower():
        raise AccountError(
            "email_mismatch", "email: this invitation is for another address; it can't be changed."
        )
    with transaction.atomic():
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise AccountError("email_taken", "An account with this email exists: log in instead.")
        user = User.objects.create_user(
            email=invitation.email, password=password, name=name.strip()
        )
        invitation_accept(token=token, user=user)
    return user


def _invitation_manager(tenant: Tenant, by: User, invitation: Invitation, verb: str) -> None:
    """Owners and admins manage invitations; an owner's invitation only owners (as only
    they may invite an owner)."""
    actor = _actor(tenant, by)
    if not actor.can_manage_team:
        raise AccountError("forbidden", f"Only owners and admins can {verb} invitations.")
    if invitation.role == Role.OWNER and not actor.is_owner:
        raise AccountError("forbidden", f"Only an owner can {verb} an invitation to an owner.")


def _invitation_unaccepted(tenant: Tenant, invitation_id: int) -> Invitation:
    invitation = (
        Invitation.objects.for_tenant(tenant)
        .unaccepted()
        .select_related("tenant")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None:
        raise AccountError("invalid_invitation", "This invitation was accepted or withdrawn.")
    return invitation


def invitation_revoke(*, tenant: Tenant, by: User, invitation_id: int) -> None:
    """Withdraw an invitation not used yet (pending or expired): its link stops working."""
    invitation = _invitation_unaccepted(tenant, invitation_id)
    _invitation_manager(tenant, by, invitation, "withdraw")
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).delete()


def invitation_resend(*, tenant: Tenant, by: User, invitation_id: int) -> Invitation:
    """Email an invitation not used yet (pending or expired) again, with a new link valid
    for the full time. The token rotates: the old link, which may have leaked, stops
    working. At most one resend per invitation a minute (counted from the last email)."""
    invitation = _invitation_unaccepted(tenant, invitation_id)
    _invitation_manager(tenant, by, invitation, "resend")
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    # Conditional on the last email's time: of two quick clicks, one sends.
    sent = Invitation.objects.filter(
        pk=invitation.pk,
        accepted_at__isnull=True,
        sent_at__lte=now - timedelta(seconds=INVITATION_RESEND_SECONDS),
    ).update(token_digest=Invitation.digest(token), sent_at=now)
    if not sent:
        _invitation_unaccepted(tenant, invitation_id)  # accepted or withdrawn meanwhile?
        raise AccountError(
            "resend_too_soon",
            f"The invitation to {invitation.email} was sent less than a minute ago: "
            "try again in a minute.",
        )
    invitation.token_digest, invitation.sent_at = Invitation.digest(token), now
    _invitation_email(invitation=invitation, token=token, inviter=by)
    return invitation


def _actor(tenant: Tenant, user: User) -> Membership:
    actor = Membership.objects.for_tenant(tenant).filter(user=user).first()
    if actor is None:
        raise AccountError("forbidden", "You are not a member of this workspace.")
    return actor


def _other_owners(membership: Membership) -> int:
    return (
        Membership.objects.for_tenant(membership.tenant).owners().exclude(pk=membership.pk).count()
    )


def membership_change_role(
    *, tenant: Tenant, by: User, membership_id: int, role: str
) -> Membership:
    """Change a member's role; owners manage owners, and a workspace keeps an owner."""
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    with transaction.atomic():
        actor = _actor(tenant, by)
        target = (
            Membership.objects.for_tenant(tenant)
            .select_for_update()
            .select_related("user")
            .get(pk=membership_id)
        )
        if not actor.can_manage_team:
            raise AccountError("forbidden", "Only owners and admins can change roles.")
        if (role == Role.OWNER or target.is_owner) and not actor.is_owner:
            raise AccountError("forbidden", "Only an owner can grant or take the owner role.")
        if target.is_owner and role != Role.OWNER and _other_owners(target) == 0:
            raise AccountError(
                "last_owner", "A workspace needs an owner: make someone else owner first."
            )
        target.role = role
        target.save(update_fields=["role"])
    return target


def membership_remove(*, tenant: Tenant, by: User, membership_id: int) -> None:
    """Remove a member (or let a member leave); the last owner cannot be removed."""
    with transaction.atomic():
        actor = _actor(tenant, by)
        target = Membership.objects.for_tenant(tenant).select_for_update().get(pk=membership_id)
        leaving = target.pk == actor.pk
        if not leaving and not actor.can_manage_team:
            raise AccountError("forbidden", "Only owners and admins can remove members.")
        if target.is_owner and not actor.is_owner:
            raise AccountError("forbidden", "Only an owner can remove an owner.")
        if target.is_owner and _other_owners(target) == 0:
            raise AccountError(
                "last_owner", "The last owner cannot be removed: make someone else owner first."
            )
        target.delete()


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # the whole key, shown once and never stored


def _require_key_manager(tenant: Tenant, user: User) -> None:
    # A key acts for the whole workspace, with no person behind it, and outlives its
    # creator's membership: only those who manage the team hand one out or take it back.
    if not _actor(tenant, user).can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can manage API keys.")


def api_key_create(*, tenant: Tenant, name: str, created_by: User | None = None) -> NewApiKey:
    """Create an API key for `tenant`; the plain key exists only in the returned value.

    A person (`created_by`) must be an owner or admin of the workspace; commands and
    operators create keys with no person.
    """
    if created_by is not None:
        _require_key_manager(tenant, created_by)
    for _ in range(5):
        prefix = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    tenant=tenant,
                    name=name.strip()[:100] or "API key",
                    prefix=prefix,
                    digest=ApiKey.digest_secret(secret),
                    created_by=created_by,
                )
        except IntegrityError:
            continue  # a prefix collision: draw again
        return NewApiKey(key=key, secret=f"{API_KEY_PREFIX}{prefix}_{secret}")
    raise AccountError("key_collision", "Could not create a unique API key; try again.")


# How stale a key's last-used time may get: the portal shows it as "n minutes ago".
API_KEY_LAST_USED_EVERY = timedelta(minutes=1)


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its last-used time touched (to the minute);
    None otherwise."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, secret = raw_key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not secret:
        return None
    key = ApiKey.objects.active().select_related("tenant").filter(prefix=prefix).first()
    if key is None or not key.matches(secret):
        return None
    now = timezone.now()
    stale = now - API_KEY_LAST_USED_EVERY
    if key.last_used_at is None or key.last_used_at < stale:
        # At most one write a minute per key: on SQLite every write takes the database's
        # one write lock, and a read-only API call should not queue for it. Conditional,
        # so concurrent requests of the same key write once.
        touched = (
            ApiKey.objects.filter(pk=key.pk)
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale))
            .update(last_used_at=now)
        )
        if touched:
            key.last_used_at = now
    return key


def api_key_revoke(*, tenant: Tenant, key_id: str | uuid.UUID, by: User | None = None) -> bool:
    """Revoke one of `tenant`'s keys; it stops working at once (each request looks the
    key up). False when it was revoked already. A person (`by`) must be an owner or admin."""
    if by is not None:
        _require_key_manager(tenant, by)
    revoked = (
        ApiKey.objects.for_tenant(tenant)
        .active()
        .filter(pk=key_id)
        .update(revoked_at=timezone.now())
    )
    return bool(revoked)


# -- idempotency -----------------------------------------------------------------------


# Two factors (django-otp): an authenticator app (TOTP) and single-use recovery codes ------

RECOVERY_CODE_COUNT = 10
_APP_DEVICE_NAME = "Authenticator app"
_RECOVERY_DEVICE_NAME = "Recovery codes"


class TwoFactorError(CodedError):
    """A second factor refused: wrong_code, throttled, not_started, already_on, wrong_secret,
    reason_required."""


@dataclass(frozen=True)
class TwoFactorOn:
    device: TOTPDevice
    recovery_codes: list[str]


def _code_clean(code: str) -> str:
    # People type codes with spaces and dashes, recovery codes in capitals.
    return "".join(code.split()).replace("-", "").lower()


def _throttled(device: TOTPDevice | StaticDevice) -> TwoFactorError | None:
    allowed, info = device.verify_is_allowed()
    if allowed:
        return None
    locked_until = (info or {}).get("locked_until")
    wait = 1
    if locked_until is not None:
        wait = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
    return TwoFactorError(
        "throttled",
        f"code: too many wrong codes. Wait {wait} second{'s' if wait != 1 else ''} and try again.",
    )


def two_factor_verify(*, user: User, code: str) -> TOTPDevice | StaticDevice:
    """The user's confirmed device that accepts `code`: a code from the app, or an unused
    recovery code (used up by this). Each wrong code makes the device wait longer before
    its next try (django-otp's throttling)."""
    token = _code_clean(code)
    # Six digits are the app's; recovery codes are eight letters and digits. Trying only
    # the one kind keeps a typo in one from throttling the other.
    model: type[TOTPDevice] | type[StaticDevice] = (
        TOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
    )
    refusal: TwoFactorError | None = None
    with transaction.atomic():
        devices = list(model.objects.filter(user=user, confirmed=True).select_for_update())
        for device in devices:
            refusal = _throttled(device)
            if refusal is None and token and device.verify_token(token):
                return device
    if refusal is not None and refusal.code == "throttled":
        raise refusal
    raise TwoFactorError(
        "wrong_code",
        "code: that code is not right. Enter the 6-digit code your app shows now, "
        "or one of your recovery codes.",
    )


def two_factor_setup_start(*, user: User) -> TOTPDevice:
    """A new authenticator-app secret for `user` to scan; it counts only once confirmed
    with a code from the app. Replaces a set-up that was started and not finished."""
    if user.has_two_factor():
        raise TwoFactorError("already_on", "Two-factor is already on for your account.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=_APP_DEVICE_NAME, confirmed=False)


def two_factor_setup_device(*, user: User) -> TOTPDevice | None:
    """The set-up `user` started and has not confirmed yet, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def totp_secret_base32(*, device: TOTPDevice) -> str:
    """The app's secret as people type it into an app that cannot scan."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def _recovery_codes_replace(user: User) -> list[str]:
    # The device stays (its tokens change), so a session verified with a recovery code
    # stays verified.
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=_RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def two_factor_confirm(*, user: User, code: str) -> TwoFactorOn:
    """Turn two-factor on: the code from the app confirms the set-up; the new recovery
    codes are returned to be shown once."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.filter(user=user, confirmed=False)
            .select_for_update()
            .order_by("-pk")
            .first()
        )
        if device is None:
            raise TwoFactorError(
                "not_started", "Start the set-up again: no authenticator app is waiting."
            )
        refusal = _throttled(device)
        if refusal is None:
            if device.verify_token(_code_clean(code)):
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                StaticDevice.objects.filter(user=user).delete()
                return TwoFactorOn(device=device, recovery_codes=_recovery_codes_replace(user))
            refusal = TwoFactorError(
                "wrong_code",
                "code: that code is not right. Enter the 6-digit code your app shows now "
                "(check that the phone's clock is right).",
            )
    raise refusal


def recovery_codes_regenerate(*, user: User, code: str) -> list[str]:
    """New recovery codes for `user` (the old ones stop working), given a current code
    from the app or an unused recovery code."""
    if not user.has_two_factor():
        raise TwoFactorError("not_started", "Two-factor is off for your account.")
    two_factor_verify(user=user, code=code)
    with transaction.atomic():
        return _recovery_codes_replace(user)


def recovery_codes_left(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _two_factor_remove(user: User) -> int:
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0]
        removed += StaticDevice.objects.filter(user=user).delete()[0]
    return removed


def two_factor_disable(*, user: User, password_or_code: str) -> None:
    """Turn two-factor off for `user`, who proves it with their password or a current
    code. While the app's device is throttled, neither is tried."""
    app = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if app is None:
        raise TwoFactorError("not_started", "Two-factor is already off for your account.")
    refusal = _throttled(app)
    if refusal is not None:
        raise refusal
    if not user.check_password(password_or_code):
        try:
            two_factor_verify(user=user, code=password_or_code)
        except TwoFactorError as e:
            if e.code == "throttled":
                raise
            raise TwoFactorError(
                "wrong_secret",
                "password_or_code: that is neither your password nor a current code.",
            ) from None
    _two_factor_remove(user)
    logger.info("two-factor turned off by user %s", user.pk)


def user_two_factor_reset(*, actor: User, user: User, reason: str) -> int:
    """An operator removes `user`'s authenticator app and recovery codes (a lost phone):
    their next log-in asks for the password only. Returns how many devices went."""
    reason = reason.strip()
    if not reason:
        raise TwoFactorError("reason_required", "reason: say why (it is kept with the reset).")
    with transaction.atomic():
        removed = _two_factor_remove(user)
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.TWO_FACTOR_RESET,
            target=f"user {user.email}",
            details={"devices_removed": removed},
            reason=reason,
        )
    logger.info(
        "two-factor reset for user %s by operator %s (%d devices): %s",
        user.pk,
        actor.pk,
        removed,
        reason,
    )
    return removed


class IdempotencyError(CodedError):
    """A retry that can't be answered: the key is in use by a request still running
    (``idempotency_in_progress``) or was first sent with another request
    (``idempotency_mismatch``)."""


def idempotency_begin(
    *, tenant: Tenant, key: str, request_line: str, fingerprint: str
) -> IdempotencyKey:
    """Claim `key` for a request, or find the answer it already got.

    Returns the record: complete (replay its answer) or claimed by this caller (run the
    request, then `idempotency_finish` or `idempotency_release`). A key first used by a
    request that died more than IDEMPOTENCY_LOCK_SECONDS ago is taken over (see
    productstudio.idempotency for what a retry may then repeat). Each statement here is a
    short transaction of its own: the request's work never runs inside one.
    """
    keys = IdempotencyKey.objects.for_tenant(tenant)
    for _ in range(3):
        now = timezone.now()
        keys.expired(now).filter(key=key).delete()
        try:
            with transaction.atomic():
                return keys.create(
                    tenant=tenant,
                    key=key,
                    request_line=request_line,
                    fingerprint=fingerprint,
                    locked_at=now,
                    created_at=now,
                )
        except IntegrityError:
            pass
        record = keys.filter(key=key).first()
        if record is None:
            continue  # released between our insert and our read: claim it again
        if record.request_line != request_line or record.fingerprint != fingerprint:
            raise IdempotencyError(
                "idempotency_mismatch",
                f"The Idempotency-Key '{key}' was first used with a different request "
                f"({record.request_line}); use a new key for a new request.",
            )
        if record.is_complete:
            return record
        stale = now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)
        if record.locked_at is not None and record.locked_at < stale:
            taken = keys.filter(
                pk=record.pk, response_status__isnull=True, locked_at=record.locked_at
            ).update(locked_at=now)
            if taken:
                record.locked_at = now
                return record
        raise IdempotencyError(
            "idempotency_in_progress",
            f"A request with the Idempotency-Key '{key}' is still in progress; "
            "retry when it has finished.",
        )
    raise IdempotencyError(
        "idempotency_in_progress", f"The Idempotency-Key '{key}' is busy; retry in a moment."
    )


def idempotency_finish(
    *, record: IdempotencyKey, status: int, body: bytes, headers: dict[str, str]
) -> bool:
    """Keep the answer of the request that holds `record`. False if the claim was lost (it
    ran so long another request took the key over): then its work must be rolled back."""
    done = IdempotencyKey.objects.filter(
        pk=record.pk, response_status__isnull=True, locked_at=record.locked_at
    ).update(
        response_status=status,
        response_body=body,
        response_headers=headers,
        completed_at=timezone.now(),
        locked_at=None,
    )
    return done == 1


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Forget a claim whose request had no effect (refused before it ran, or failed and was
    rolled back): the same key may be sent again."""
    IdempotencyKey.objects.filter(
        pk=record.pk, response_status__isnull=True, locked_at=record.locked_at
    ).delete()


def idempotency_keys_expire() -> int:
    """Delete keys older than IDEMPOTENCY_KEY_HOURS; returns how many."""
    deleted, _ = IdempotencyKey.objects.expired().delete()
    return deleted


# -- credits ---------------------------------------------------------------------------


class CreditError(CodedError):
    """A refused credit operation (``insufficient_credits``, ``invalid_amount``)."""


def _credit_append(
    *,
    tenant_id: int,
    kind: str,
    amount: int,
    held: int = 0,
    job: Job | None = None,
    user: User | None = None,
    memo: str = "",
    payment_ref: str = "",
) -> CreditEntry:
    """Append one entry and move the tenant's totals with it, under the tenant's row
    lock: concurrent entries for a tenant queue here, so totals never drift.

    The low-balance warning rides along at no extra query: an entry that takes the
    balance below the threshold schedules the check for after commit (once, until the
    owners are told), and one that brings it back clears the mark in the same update.
    """
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    balance = tenant.credit_balance + amount
    held_after = tenant.credit_held + held
    if balance < 0:
        raise CreditError(
            "insufficient_credits",
            f"This needs {-amount} credits and the workspace has {tenant.credit_balance}.",
        )
    threshold = tenant.low_balance_threshold
    notified = tenant.low_balance_notified_at is not None
    totals: dict[str, Any] = {"credit_balance": balance, "credit_held": held_after}
    if amount > 0 and notified and balance >= threshold:
        totals["low_balance_notified_at"] = None
    Tenant.objects.filter(pk=tenant_id).update(**totals)
    entry = CreditEntry.objects.create(
        tenant_id=tenant_id,
        kind=kind,
        amount=amount,
        balance_after=balance,
        held_after=held_after,
        job=job,
        created_by=user,
        memo=memo[:300],
        payment_ref=payment_ref,
    )
    if amount < 0 and not notified and balance < threshold:
        # Robust: a failure to queue the email must not fail the job that was just held.
        transaction.on_commit(partial(_credits_low_check_later, tenant_id), robust=True)
    return entry


def credits_grant(
    *, tenant: Tenant, amount: int, user: User | None, memo: str, kind: str = CreditKind.GRANT
) -> CreditEntry:
    """Add credits (a grant, a purchase or a refund); ``amount`` must be positive."""
    if amount <= 0:
        raise CreditError("invalid_amount", "amount: must be a positive number of credits.")
    with transaction.atomic():
        return _credit_append(tenant_id=tenant.pk, kind=kind, amount=amount, user=user, memo=memo)


def credits_adjust(*, tenant: Tenant, amount: int, user: User, memo: str) -> CreditEntry:
    """An operator's correction, up or down; refused if the balance would go negative."""
    if amount == 0:
        raise CreditError("invalid_amount", "amount: an adjustment cannot be zero.")
    if not memo.strip():
        raise CreditError("memo_required", "memo: say why the balance is adjusted.")
    with transaction.atomic():
        balance = Tenant.objects.select_for_update().get(pk=tenant.pk).credit_balance
        if balance + amount < 0:
            raise CreditError(
                "insufficient_credits",
                f"amount: {amount:+d} would make the balance {balance + amount}; "
                f"the workspace has {balance} credits, so at most -{balance} can be taken.",
            )
        return _credit_append(
            tenant_id=tenant.pk,
            kind=CreditKind.ADJUSTMENT,
            amount=amount,
            user=user,
            memo=memo.strip(),
        )


def credits_hold(*, tenant: Tenant, job: Job, amount: int, user: User | None = None) -> CreditEntry:
    """Hold a job's price, or refuse with ``insufficient_credits``. A job is held once:
    a second hold for it returns the first."""
    if amount < 0:
        raise CreditError("invalid_amount", "amount: a price cannot be negative.")
    try:
        with transaction.atomic():
            return _credit_append(
                tenant_id=tenant.pk,
                kind=CreditKind.HOLD,
                amount=-amount,
                held=amount,
                job=job,
                user=user,
                memo=f"held for job {job.pk}",
            )
    except IntegrityError:
        return CreditEntry.objects.get(job=job, kind=CreditKind.HOLD)


def _credits_settle(*, job: Job, kind: str) -> CreditEntry | None:
    """Capture or release a job's hold, once. None when the job holds nothing, or was
    already settled the other way (a job is captured or released, never both)."""
    try:
        with transaction.atomic():
            hold = CreditEntry.objects.filter(job=job, kind=CreditKind.HOLD).first()
            if hold is None:
                return None
            # Taking the tenant's lock first makes the check below race-free.
            Tenant.objects.select_for_update().get(pk=hold.tenant_id)
            settled = CreditEntry.objects.filter(
                job=job, kind__in=[CreditKind.CAPTURE, CreditKind.RELEASE]
            ).first()
            if settled is not None:
                return settled if settled.kind == kind else None
            price = -hold.amount
            return _credit_append(
                tenant_id=hold.tenant_id,
                kind=kind,
                amount=0 if kind == CreditKind.CAPTURE else price,
                held=-price,
                job=job,
                memo=f"{kind} for job {job.pk}",
            )
    except IntegrityError:
        return CreditEntry.objects.filter(job=job, kind=kind).first()


def credits_refund(*, job: Job, user: User, memo: str) -> CreditEntry:
    """An operator gives back what a succeeded job spent (a result the shop could not
    use): a ``refund`` entry for the job, once."""
    if not memo.strip():
        raise CreditError("memo_required", "memo: say why the job is refunded.")
    try:
        with transaction.atomic():
            capture = CreditEntry.objects.filter(job=job, kind=CreditKind.CAPTURE).first()
            hold = CreditEntry.objects.filter(job=job, kind=CreditKind.HOLD).first()
            if capture is None or hold is None:
                raise CreditError(
                    "not_refundable", "Only a job that succeeded and was charged can be refunded."
                )
            return _credit_append(
                tenant_id=capture.tenant_id,
                kind=CreditKind.REFUND,
                amount=-hold.amount,
                job=job,
                user=user,
                memo=memo,
            )
    except IntegrityError as e:
        raise CreditError("already_refunded", "This job was refunded already.") from e


def credits_capture(*, job: Job) -> CreditEntry | None:
    """The job succeeded: its held credits are spent."""
    return _credits_settle(job=job, kind=CreditKind.CAPTURE)


def credits_release(*, job: Job) -> CreditEntry | None:
    """The job failed, was canceled or expired: its held credits go back to the shop."""
    return _credits_settle(job=job, kind=CreditKind.RELEASE)


# -- the workspace's own Segmind key -----------------------------------------------------


def _fernet() -> Fernet:
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:
        digest = hashlib.sha256(f"productstudio.field-key:{settings.SECRET_KEY}".encode()).digest()
        key = base64.urlsafe_b64encode(digest).decode()
    return Fernet(key)


@dataclass(frozen=True)
class KeyCheck:
    last4: str
    # Segmind accepted the key but its account is out of credit (406): saved anyway,
    # the shop is told to top up.
    out_of_credit: bool


def segmind_key_set(*, tenant: Tenant, by: User, key: str) -> KeyCheck:
    """Save the workspace's own Segmind key, encrypted, once a call that costs nothing
    shows Segmind accepts it. Owners and admins only."""
    from jobs.engines.segmind import client as segmind

    actor = _actor(tenant, by)
    if not actor.can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can change the Segmind key.")
    key = key.strip()
    if not (8 <= len(key) <= 200) or not key.isascii() or not key.isprintable() or " " in key:
        raise AccountError("invalid_key", "segmind_key: this does not look like a Segmind API key.")
    out_of_credit = False
    try:
        segmind.key_check(api_key=key, base_url=settings.SEGMIND_API_BASE)
    except segmind.SegmindError as e:
        if e.code == "provider_insufficient_credits":
            out_of_credit = True
        elif e.code in ("provider_unauthorized", "provider_forbidden"):
            raise AccountError(
                "invalid_key", "segmind_key: Segmind refused this key; check it and try again."
            ) from e
        else:
            raise AccountError(
                "segmind_unreachable",
                "segmind_key: Segmind could not be asked about the key just now "
                f"({e.message}); nothing was saved. Try again.",
            ) from e
    Tenant.objects.filter(pk=tenant.pk).update(
        segmind_key_encrypted=_fernet().encrypt(key.encode()).decode(),
        segmind_key_last4=key[-4:],
        segmind_key_set_at=timezone.now(),
    )
    tenant.refresh_from_db(
        fields=["segmind_key_encrypted", "segmind_key_last4", "segmind_key_set_at"]
    )
    return KeyCheck(last4=key[-4:], out_of_credit=out_of_credit)


def segmind_key_clear(*, tenant: Tenant, by: User) -> None:
    """Forget the workspace's own key: its next jobs use the platform's key and price."""
    actor = _actor(tenant, by)
    if not actor.can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can change the Segmind key.")
    Tenant.objects.filter(pk=tenant.pk).update(
        segmind_key_encrypted="", segmind_key_last4="", segmind_key_set_at=None
    )
    tenant.refresh_from_db(
        fields=["segmind_key_encrypted", "segmind_key_last4", "segmind_key_set_at"]
    )


def segmind_key_get(*, tenant: Tenant) -> str:
    """The workspace's own Segmind key in clear, or "" when it has none (or it can no
    longer be decrypted: the encryption key changed, and the shop must enter it again)."""
    if not tenant.segmind_key_encrypted:
        return ""
    try:
        return _fernet().decrypt(tenant.segmind_key_encrypted.encode()).decode()
    except InvalidToken:
        return ""


# -- low balance -----------------------------------------------------------------------


def _credits_low_check_later(tenant_id: int) -> None:
    # A task, so the email's SMTP round trip stays off the request that held a job.
    from django_q.tasks import async_task

    async_task(
        "accounts.tasks.credits_low_check",
        tenant_id,
        task_name=f"credits-low-{tenant_id}",
        group="credits",
    )


def credits_low_check(*, tenant_id: int) -> bool:
    """Email the workspace's owners once when its balance is below its threshold.

    The conditional update is the claim: of any number of concurrent checks, one moves
    ``low_balance_notified_at`` from empty and sends; the rest find it set. A balance
    back at or above the threshold clears the mark, so a later drop warns again.
    Returns whether this call sent the email; with it goes a ``credits.low`` webhook.
    """
    below = Q(credit_balance__lt=F("low_balance_threshold"))
    now = timezone.now()
    claimed = Tenant.objects.filter(
        below, pk=tenant_id, low_balance_notified_at__isnull=True
    ).update(low_balance_notified_at=now)
    if not claimed:
        Tenant.objects.filter(~below, pk=tenant_id, low_balance_notified_at__isnull=False).update(
            low_balance_notified_at=None
        )
        return False
    tenant = Tenant.objects.get(pk=tenant_id)
    owners = list(
        User.objects.filter(
            memberships__tenant_id=tenant_id, memberships__role=Role.OWNER, is_active=True
        ).values_list("email", flat=True)
    )
    if not owners:
        return False
    context = {
        "tenant": tenant,
        "url": settings.SITE_URL + reverse("credits", args=[tenant.slug]),
    }
    try:
        send_mail(
            subject=f"{tenant.name} is running low on ProductStudio credits",
            message=render_to_string("accounts/email/low_balance.txt", context),
            from_email=None,
            recipient_list=owners,
        )
    except Exception:
        logger.exception("low-balance email for tenant %s was not sent", tenant_id)
        # Give the claim back, so the next entry below the threshold tries again.
        Tenant.objects.filter(pk=tenant_id, low_balance_notified_at=now).update(
            low_balance_notified_at=None
        )
        return False
    # With the email, so an integration hears of it exactly when the owners do.
    webhook_event_emit(
        tenant=tenant,
        type=WebhookEventType.CREDITS_LOW,
        data={
            "workspace": tenant.slug,
            "balance": tenant.credit_balance,
            "held": tenant.credit_held,
            "threshold": tenant.low_balance_threshold,
            "buy_url": context["url"],
        },
    )
    return True


def credits_threshold_set(*, tenant: Tenant, by: User, threshold: int) -> Tenant:
    """An owner sets the balance below which the portal warns and the owners are
    emailed. Raising it above the balance shows the warning at once; the email waits
    for the next entry that lowers the balance (the owner who set it knows already)."""
    actor = _actor(tenant, by)
    if not actor.is_owner:
        raise CreditError("forbidden", "Only owners can change the low-balance warning.")
    if threshold < 0:
        raise CreditError("invalid_threshold", "low_balance_threshold: must be 0 or more.")
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        locked.low_balance_threshold = threshold
        if locked.credit_balance >= threshold:
            locked.low_balance_notified_at = None
        locked.save(update_fields=["low_balance_threshold", "low_balance_notified_at"])
    return locked


# -- the ledger's pages ----------------------------------------------------------------


def credits_ledger(
    *,
    tenant: Tenant,
    kind: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    job: str = "",
) -> CreditEntryQuerySet:
    """The workspace's entries, newest first, narrowed by the credits page's filters
    (the page and its CSV export show the same rows)."""
    return (
        CreditEntry.objects.for_tenant(tenant)
        .of_kind(kind)
        .created_between(date_from, date_to)
        .for_job_id(job)
        .order_by("-created_at", "-id")
    )


@dataclass(frozen=True)
class MonthlyUsage:
    month: datetime
    model: str
    jobs: int
    credits: int


def credits_usage_by_month(*, tenant: Tenant, months: int = 12) -> list[MonthlyUsage]:
    """Captured jobs per calendar month and model over the last `months` months (this
    one included, in the site's time zone), with the credits they spent, newest first.

    A capture moves a job's held price to spent, so the credits are the captured jobs'
    prices (what their holds took), summed in the database.
    """
    now = timezone.localtime()
    index = now.year * 12 + now.month - 1 - (months - 1)
    since = timezone.make_aware(datetime(index // 12, index % 12 + 1, 1))
    rows = (
        CreditEntry.objects.for_tenant(tenant)
        .filter(kind=CreditKind.CAPTURE, job__isnull=False, created_at__gte=since)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "job__model")
        .annotate(jobs=Count("id"), credits=Sum("job__price"))
        .order_by("-month", "job__model")
    )
    return [
        MonthlyUsage(
            month=row["month"], model=row["job__model"], jobs=row["jobs"], credits=row["credits"]
        )
        for row in rows
    ]


# -- buying credits: Stripe Checkout and its webhook -----------------------------------


class BillingError(CodedError):
    """A refused purchase or webhook delivery (``stripe_not_configured``, ``forbidden``,
    ``unknown_pack``, ``stripe_error``, ``invalid_event``)."""


# Seconds to wait for Stripe's API before telling the shop to try again.
STRIPE_TIMEOUT_SECONDS = 20


def billing_stripe_enabled() -> bool:
    """Shops buy packs themselves only when both Stripe keys are set; without them
    purchases go through the operators, who grant credits in the admin."""
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def _stripe_client() -> stripe.StripeClient:
    # Imported where used: the library takes ~20 MB in each process that loads it, and
    # the job workers never do.
    import stripe

    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        http_client=stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS),
    )


def _credits_page_url(tenant: Tenant) -> str:
    return settings.SITE_URL + reverse("credits", args=[tenant.slug])


@dataclass(frozen=True)
class StartedCheckout:
    session: CheckoutSession
    url: str  # Stripe's payment page, where the shop is sent next


def checkout_start(*, tenant: Tenant, user: User, pack_id: int) -> StartedCheckout:
    """Create a Stripe Checkout session for a pack, and record what it sells before the
    shop is sent to pay: the webhook credits our record, never the event's figures."""
    if not billing_stripe_enabled():
        raise BillingError(
            "stripe_not_configured", "Buying credits online is not set up: ask the operators."
        )
    if not _actor(tenant, user).can_manage_team:
        raise BillingError("forbidden", "Only owners and admins can buy credits.")
    pack = CreditPack.objects.on_sale().filter(pk=pack_id).first()
    if pack is None:
        raise BillingError("unknown_pack", "pack: this pack is not on sale any more.")
    import stripe

    back = _credits_page_url(tenant)
    params: SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": pack.currency,
                    "unit_amount": pack.price_cents,
                    "product_data": {"name": f"{pack.name}: {pack.credits} ProductStudio credits"},
                },
            }
        ],
        "client_reference_id": str(tenant.pk),
        "metadata": {"tenant_id": str(tenant.pk), "tenant": tenant.slug, "pack_id": str(pack.pk)},
        "customer_email": user.email,
        # Stripe fills in {CHECKOUT_SESSION_ID} itself.
        "success_url": back + "?checkout=success&session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": back + "?checkout=canceled",
    }
    try:
        session = _stripe_client().v1.checkout.sessions.create(params=params)
    except stripe.StripeError as e:
        logger.warning("Stripe refused a checkout session for tenant %s: %s", tenant.pk, e)
        raise BillingError(
            "stripe_error", "Stripe could not start the payment; nothing was charged. Try again."
        ) from e
    if not session.url:
        raise BillingError("stripe_error", "Stripe gave no payment page; nothing was charged.")
    record = CheckoutSession.objects.create(
        session_id=session.id,
        tenant=tenant,
        pack=pack,
        credits=pack.credits,
        price_cents=pack.price_cents,
        currency=pack.currency,
        created_by=user,
    )
    return StartedCheckout(session=record, url=session.url)


# What the webhook acts on; Stripe's other events are acknowledged and ignored.
CHECKOUT_PAID_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)
CHECKOUT_EXPIRED_EVENT = "checkout.session.expired"


def stripe_event_handle(*, payload: bytes, signature: str) -> str:
    """Verify and act on one webhook delivery; returns what was done, for the log.

    A bad signature or a timestamp older than the tolerance raises ``invalid_event``
    (Stripe is answered 400). Everything else is acknowledged: a paid session is
    credited exactly once (the event id is recorded; the session's row is locked and
    checked; the ledger's unique payment_ref backs both), an event seen before does
    nothing, a session we never created is logged and left alone.
    """
    import stripe

    try:
        event = stripe.Webhook.construct_event(
            payload,
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        ).to_dict()
    except (stripe.SignatureVerificationError, ValueError) as e:
        logger.warning("Stripe webhook refused: %s", e)
        raise BillingError(
            "invalid_event", "The event's signature or timestamp is not valid."
        ) from e
    event_type = str(event.get("type", ""))
    if event_type not in CHECKOUT_PAID_EVENTS and event_type != CHECKOUT_EXPIRED_EVENT:
        return "ignored"
    obj = (event.get("data") or {}).get("object") or {}
    session_id = str(obj.get("id") or "")
    if not event.get("id") or not session_id:
        logger.warning("Stripe event %r of type %s names no session", event.get("id"), event_type)
        return "malformed"
    with transaction.atomic():
        try:
            with transaction.atomic():
                StripeEvent.objects.create(event_id=event["id"], type=event_type)
        except IntegrityError:
            return "replayed"
        checkout = (
            CheckoutSession.objects.select_for_update()
            .select_related("pack")
            .filter(session_id=session_id)
            .first()
        )
        if checkout is None:
            logger.warning("Stripe event %s names unknown session %r", event["id"], session_id)
            return "unknown_session"
        if event_type == CHECKOUT_EXPIRED_EVENT:
            if checkout.status != CheckoutStatus.OPEN:
                return "already_closed"
            checkout.status = CheckoutStatus.EXPIRED
            checkout.save(update_fields=["status"])
            return "expired"
        if obj.get("payment_status") != "paid":
            # Paid later by a delayed method: async_payment_succeeded credits it then.
            return "not_paid"
        if checkout.status == CheckoutStatus.COMPLETED:
            return "already_credited"
        if obj.get("amount_total") not in (None, checkout.price_cents):
            logger.warning(
                "Stripe session %s charged %s, we sold it for %s; crediting our record",
                session_id,
                obj.get("amount_total"),
                checkout.price_cents,
            )
        try:
            with transaction.atomic():
                _credit_append(
                    tenant_id=checkout.tenant_id,
                    kind=CreditKind.PURCHASE,
                    amount=checkout.credits,
                    memo=f"Purchase: {checkout.pack.name} ({checkout.credits} credits)",
                    payment_ref=session_id,
                )
        except IntegrityError:
            return "already_credited"
        checkout.status = CheckoutStatus.COMPLETED
        checkout.completed_at = timezone.now()
        checkout.save(update_fields=["status", "completed_at"])
    return "credited"


# -- webhooks (Standard Webhooks) --------------------------------------------------------


class WebhookError(CodedError):
    """A refused webhook operation (``validation_error``, ``endpoint_disabled``), or a
    delivery that does not verify (``invalid_signature``, ``invalid_timestamp``)."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(code, message)
        self.errors: dict[str, str] = {field: message.removeprefix(f"{field}: ")} if field else {}


WEBHOOK_SECRET_PREFIX = "whsec_"
# The spec asks for 24 to 64 random bytes.
WEBHOOK_SECRET_BYTES = 32
# Each retry waits a random time (full jitter) up to its step's cap, and at least the
# first step: no receiver is asked again within seconds. Past the last step the cap
# stays there; a message is given up once its next attempt would come later than
# WEBHOOK_MAX_AGE_HOURS after its event, or after WEBHOOK_MAX_ATTEMPTS attempts.
WEBHOOK_RETRY_CAPS_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)
WEBHOOK_MAX_ATTEMPTS = 12
# What is kept of a receiver's answer, for the delivery log.
WEBHOOK_EXCERPT_BYTES = 1024
# What a verifying receiver accepts by default (the spec's libraries use 5 minutes).
WEBHOOK_TOLERANCE_SECONDS = 300


def webhook_secret_new() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return (
        WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()
    )


def _secret_seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def _secret_open(sealed: str) -> str:
    return _fernet().decrypt(sealed.encode()).decode()


def webhook_sign(*, secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` of one attempt: ``v1,`` and the base64 HMAC-SHA256 of
    ``{id}.{timestamp}.{body}``, keyed with the secret's decoded bytes."""
    from standardwebhooks import Webhook

    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(secret).sign(msg_id=message_id, timestamp=when, data=body)


def webhook_headers(*, secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one attempt, as the spec names them."""
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": webhook_sign(
            secret=secret, message_id=message_id, timestamp=timestamp, body=body
        ),
    }


def webhook_verify(
    *,
    secret: str,
    body: str | bytes,
    headers: Mapping[str, str],
    tolerance_seconds: int = WEBHOOK_TOLERANCE_SECONDS,
    now: float | None = None,
) -> Any:
    """What a receiver does: check a delivery's signature and timestamp, and return its
    parsed payload. Raises ``invalid_timestamp`` for a timestamp further than
    ``tolerance_seconds`` from ``now`` (a replay), ``invalid_signature`` when no
    ``v1`` signature of the header list matches (compared in constant time)."""
    text = body.decode() if isinstance(body, bytes) else body
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (message_id and stamp and signatures):
        raise WebhookError("invalid_signature", "The webhook-* headers are missing.")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookError("invalid_timestamp", "webhook-timestamp is not a number.") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookError(
            "invalid_timestamp",
            f"webhook-timestamp is more than {tolerance_seconds} seconds from now.",
        )
    expected = webhook_sign(secret=secret, message_id=message_id, timestamp=timestamp, body=text)
    expected_digest = base64.b64decode(expected.partition(",")[2])
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            digest = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(digest, expected_digest):
            return json.loads(text)
    raise WebhookError("invalid_signature", "No signature matches the body.")


def webhook_url_check(*, url: str, field: str = "url") -> str:
    """A target URL checked with the fetcher's rules (http/https, no credentials, no
    private address once resolved, unless FETCH_ALLOW_PRIVATE_HOSTS allows it); the
    normalised URL, or a ``validation_error`` naming `field`."""
    from productstudio.lib import fetcher

    if not isinstance(url, str) or not url.strip():
        raise WebhookError(
            "validation_error", f"{field}: give the URL to send events to.", field=field
        )
    try:
        return fetcher.check_url_from_settings(url.strip())
    except fetcher.FetchError as e:
        message = (
            "must start with http:// or https://." if e.code == "unsupported_scheme" else e.message
        )
        raise WebhookError("validation_error", f"{field}: {message}", field=field) from e


def _event_types_check(event_types: Sequence[str]) -> list[str]:
    allowed = [str(t) for t in SUBSCRIBABLE_EVENT_TYPES]
    unknown = [t for t in event_types if t not in allowed]
    if unknown:
        raise WebhookError(
            "validation_error",
            f"event_types: unknown event type '{unknown[0]}'; choose from {', '.join(allowed)}.",
            field="event_types",
        )
    return list(dict.fromkeys(event_types))


@dataclass(frozen=True)
class NewWebhookEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once, at creation


def webhook_endpoint_create(
    *,
    tenant: Tenant,
    url: str,
    event_types: Sequence[str] = (),
    description: str = "",
    created_by: User | None = None,
) -> NewWebhookEndpoint:
    """Add an endpoint for `tenant`'s events (all of them when `event_types` is empty),
    with a new signing secret. The URL is checked now and again at each delivery."""
    # Refused before the URL is resolved when the workspace is already at its cap.
    _webhook_endpoints_cap_check(tenant=tenant)
    checked = webhook_url_check(url=url)
    types = _event_types_check(event_types)
    secret = webhook_secret_new()
    with transaction.atomic():
        # The workspace's row is locked so two requests at once cannot pass the cap.
        list(Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk"))
        _webhook_endpoints_cap_check(tenant=tenant)
        endpoint = WebhookEndpoint.objects.create(
            tenant=tenant,
            url=checked,
            description=description.strip()[:200],
            event_types=types,
            secret_encrypted=_secret_seal(secret),
            created_by=created_by,
        )
    return NewWebhookEndpoint(endpoint=endpoint, secret=secret)


def _webhook_endpoints_cap_check(*, tenant: Tenant) -> None:
    cap = int(settings.WEBHOOK_MAX_ENDPOINTS)
    if WebhookEndpoint.objects.for_tenant(tenant).count() >= cap:
        raise WebhookError(
            "validation_error",
            f"url: this workspace already has {cap} webhook endpoints, the most allowed "
            "(WEBHOOK_MAX_ENDPOINTS). Delete one, or send several event types to one endpoint.",
            field="url",
        )


def webhook_endpoint_secret(*, endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret in clear."""
    return _secret_open(endpoint.secret_encrypted)


def webhook_endpoint_delete(*, tenant: Tenant, endpoint_id: str) -> bool:
    """Delete one of `tenant`'s endpoints with its delivery log; pending deliveries
    go with it."""
    deleted, _ = WebhookEndpoint.objects.for_tenant(tenant).filter(pk=endpoint_id).delete()
    return bool(deleted)


def webhook_endpoint_disable(*, endpoint_id: uuid.UUID, reason: str) -> bool:
    """Stop sending to an endpoint (its receiver answered 410 Gone): its pending
    deliveries fail now. False when it was disabled already."""
    now = timezone.now()
    with transaction.atomic():
        disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
            enabled=False, disabled_at=now, disabled_reason=reason[:300]
        )
        WebhookDelivery.objects.pending().filter(endpoint_id=endpoint_id).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            completed_at=now,
            last_error=f"Not sent: the endpoint was disabled ({reason})"[:300],
        )
    return bool(disabled)


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> None:
    """Send to a disabled endpoint again (an operator's call): events from now on; the
    deliveries failed meanwhile stay failed."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_at=None, disabled_reason=""
    )
    endpoint.refresh_from_db(fields=["enabled", "disabled_at", "disabled_reason"])


def webhook_workspace_secret(*, tenant: Tenant) -> str:
    """The workspace's secret for jobs' own `webhook_url`s, made on first use (the
    conditional update keeps the first of two concurrent callers' secret)."""
    sealed = (
        Tenant.objects.filter(pk=tenant.pk).values_list("webhook_secret_encrypted", flat=True).get()
    )
    if not sealed:
        Tenant.objects.filter(pk=tenant.pk, webhook_secret_encrypted="").update(
            webhook_secret_encrypted=_secret_seal(webhook_secret_new())
        )
        sealed = (
            Tenant.objects.filter(pk=tenant.pk)
            .values_list("webhook_secret_encrypted", flat=True)
            .get()
        )
    tenant.webhook_secret_encrypted = sealed
    return _secret_open(sealed)


def _message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def webhook_endpoints_listening(*, tenant_ids: Iterable[int]) -> dict[int, list[WebhookEndpoint]]:
    """The enabled endpoints of these workspaces, by workspace, in one query.

    The Segmind dispatcher stores many results in one transaction: it loads them once
    for all instead of a query per finished job (most workspaces have none).
    """
    listening: dict[int, list[WebhookEndpoint]] = {tenant_id: [] for tenant_id in tenant_ids}
    for endpoint in WebhookEndpoint.objects.enabled().filter(tenant_id__in=list(listening)):
        listening[endpoint.tenant_id].append(endpoint)
    return listening


def webhook_event_emit(
    *,
    tenant: Tenant,
    type: str,
    data: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    job: Job | None = None,
    endpoint: WebhookEndpoint | None = None,
    listening: Sequence[WebhookEndpoint] | None = None,
    send: bool = True,
) -> list[WebhookDelivery]:
    """Record one event for every enabled endpoint of `tenant` that subscribes to its
    `type` (and the job's own `webhook_url` for job events), and send the deliveries
    once the transaction commits.

    `type` is one of ``WebhookEventType`` (``job.succeeded``, ``job.failed``,
    ``batch.completed``, ``credits.low``, ``webhook.test``); `data` becomes the payload's
    ``data``, or is a function that makes it, called only when someone listens.
    `endpoint` sends to that endpoint alone (a test event). `listening` is the tenant's
    enabled endpoints when the caller loaded them for many events at once (see
    `webhook_endpoints_listening`). With `send` False nothing is
    queued: the caller sends (or the next sweep does). Inside the caller's transaction,
    so an event exists exactly when what it reports was committed.
    """
    if type not in WebhookEventType.values:
        raise ValueError(f"unknown webhook event type {type!r}")
    if endpoint is not None:
        endpoints = [endpoint]
    else:
        candidates: Iterable[WebhookEndpoint] = (
            listening
            if listening is not None
            else WebhookEndpoint.objects.for_tenant(tenant).enabled()
        )
        endpoints = [e for e in candidates if e.subscribes_to(type)]
    job_url = job.webhook_url if job is not None and type in JOB_EVENT_TYPES else ""
    if not endpoints and not job_url:
        return []
    now = timezone.now()
    payload = {
        "type": type,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": data() if callable(data) else data,
    }
    body = json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))
    message_id = _message_id()
    common = {
        "tenant": tenant,
        "job": job,
        "message_id": message_id,
        "event_type": type,
        "body": body,
        "next_attempt_at": now,
        "created_at": now,
    }
    rows = [WebhookDelivery(endpoint=e, url=e.url, **common) for e in endpoints]
    if job_url:
        rows.append(WebhookDelivery(endpoint=None, url=job_url, **common))
    deliveries = WebhookDelivery.objects.bulk_create(rows)
    if send:
        ids = [str(d.pk) for d in deliveries]
        # Robust: the rows are committed and the sweep sends them if queueing fails.
        transaction.on_commit(partial(_webhook_deliveries_enqueue, ids), robust=True)
    return deliveries


def _webhook_deliveries_enqueue(delivery_ids: list[str]) -> None:
    # The sender finds the new deliveries itself (they are due now).
    webhook_sender_ensure()


def webhook_sender_ensure() -> None:
    """Make sure the webhook sender will run soon, in its own cluster (call it once the
    new deliveries are committed). It is queued unless a live sender holds the lease:
    that one looks for due deliveries every tick, and looks again after it lets go."""
    from django_q.tasks import async_task

    from jobs.models import Lease  # the lease table the Segmind dispatcher uses too

    held = Lease.objects.filter(name=WEBHOOK_SENDER_LEASE, leased_until__gt=timezone.now())
    if not held.exists():
        async_task(
            "accounts.tasks.webhooks_send_due",
            task_name=f"webhooks-{time.time():.0f}",
            group="webhooks",
            cluster=settings.WEBHOOK_Q_CLUSTER,
        )


def webhook_test_send(*, tenant: Tenant, endpoint_id: str) -> WebhookDelivery:
    """Send a ``webhook.test`` event to one of `tenant`'s endpoints now, and return its
    delivery with the outcome of this first attempt (retried later like any other)."""
    endpoint = WebhookEndpoint.objects.for_tenant(tenant).get(pk=endpoint_id)
    if not endpoint.enabled:
        raise WebhookError(
            "endpoint_disabled",
            f"This endpoint is disabled ({endpoint.disabled_reason or 'by an operator'}).",
        )
    data = {
        "endpoint_id": str(endpoint.pk),
        "message": "A test event from ProductStudio: this endpoint receives and verifies.",
    }
    [delivery] = webhook_event_emit(
        tenant=tenant, type=WebhookEventType.WEBHOOK_TEST, data=data, endpoint=endpoint, send=False
    )
    webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


@dataclass(frozen=True)
class _Attempt:
    """A claimed delivery, ready to post: no database work from here until recorded."""

    delivery_id: uuid.UUID
    attempt: int
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str
    excerpt: str
    gone: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim_seconds() -> float:
    # Longer than one attempt can take (the fetcher's deadline covers all of it).
    return float(settings.WEBHOOK_TIMEOUT_SECONDS) * 2 + 60


def _delivery_claim(delivery_id: str | uuid.UUID) -> _Attempt | None:
    """Take a due delivery for one attempt with a conditional update: of two runs, one
    moves `next_attempt_at` past now and sends; the other finds it not due. An attempt
    whose worker dies is due again once the claim runs out."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.due(now)
        .filter(pk=delivery_id)
        .update(
            next_attempt_at=now + timedelta(seconds=_claim_seconds()),
            attempts=F("attempts") + 1,
            last_attempt_at=now,
        )
    )
    if not claimed:
        return None
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "tenant").filter(pk=delivery_id).first()
    )
    if delivery is None:
        return None  # its endpoint was deleted meanwhile
    if delivery.endpoint is not None and not delivery.endpoint.enabled:
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            completed_at=now,
            last_error="Not sent: the endpoint is disabled.",
        )
        return None
    try:
        if delivery.endpoint is not None:
            secret = webhook_endpoint_secret(endpoint=delivery.endpoint)
        else:
            secret = webhook_workspace_secret(tenant=delivery.tenant)
    except InvalidToken:
        # FIELD_ENCRYPTION_KEY changed: nothing can be signed until a new secret is made.
        _delivery_record(
            delivery.pk,
            delivery.attempts,
            _Outcome(None, "The signing secret can no longer be decrypted.", ""),
        )
        return None
    timestamp = int(time.time())
    return _Attempt(
        delivery_id=delivery.pk,
        attempt=delivery.attempts,
        url=delivery.url,
        body=delivery.body.encode(),
        headers=webhook_headers(
            secret=secret, message_id=delivery.message_id, timestamp=timestamp, body=delivery.body
        ),
    )


def _delivery_post(attempt: _Attempt) -> _Outcome:
    """One POST through the safe fetcher, checked again now (DNS may have changed)."""
    from productstudio.lib import fetcher

    try:
        result = fetcher.post_url(
            attempt.url,
            body=attempt.body,
            headers=attempt.headers,
            timeout=float(settings.WEBHOOK_TIMEOUT_SECONDS),
            allow_private_hosts=list(settings.FETCH_ALLOW_PRIVATE_HOSTS),
            excerpt_bytes=WEBHOOK_EXCERPT_BYTES,
        )
    except fetcher.FetchError as e:
        return _Outcome(None, f"{e.code}: {e.message}", "")
    excerpt = result.excerpt.decode("utf-8", errors="replace")
    answer = f"{result.status_code} {result.reason}".strip()
    if result.ok:
        return _Outcome(result.status_code, "", excerpt)
    if 300 <= result.status_code < 400:
        where = f" to {result.location}" if result.location else ""
        error = f"The receiver answered {answer}: redirects{where} are not followed."
    else:
        error = f"The receiver answered {answer}."
    return _Outcome(result.status_code, error, excerpt, gone=result.status_code == 410)


def webhook_retry_delay(*, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first):
    exponential backoff with full jitter, a random time up to the step's cap, never
    less than the first step."""
    caps = WEBHOOK_RETRY_CAPS_SECONDS
    cap = caps[min(attempt, len(caps)) - 1]
    draw = (rng or _jitter).uniform(0, cap)
    return max(float(caps[0]), draw)


# Not for secrets: only spreads retries out.
_jitter = random.Random()


def _delivery_record(delivery_id: uuid.UUID, attempt: int, outcome: _Outcome) -> str:
    """Store an attempt's outcome and decide what follows: done, another attempt
    later, or given up. Only the run that made this attempt records it."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "last_error": outcome.error[:300],
        "response_excerpt": outcome.excerpt,
    }
    delivery = (
        WebhookDelivery.objects.filter(pk=delivery_id).only("created_at", "endpoint_id").first()
    )
    if delivery is None:
        return "gone"  # its endpoint was deleted meanwhile
    if outcome.ok:
        status = DeliveryStatus.SUCCEEDED
    elif outcome.gone:
        status = DeliveryStatus.FAILED
    else:
        retry_at = now + timedelta(seconds=webhook_retry_delay(attempt=attempt))
        give_up_at = delivery.created_at + timedelta(hours=settings.WEBHOOK_MAX_AGE_HOURS)
        if attempt >= WEBHOOK_MAX_ATTEMPTS or retry_at > give_up_at:
            status = DeliveryStatus.FAILED
            fields["last_error"] = f"Given up after {attempt} attempts: {outcome.error}"[:300]
        else:
            status = DeliveryStatus.PENDING
            fields["next_attempt_at"] = retry_at
    if status != DeliveryStatus.PENDING:
        fields["next_attempt_at"] = None
        fields["completed_at"] = now
    WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, attempts=attempt
    ).update(status=status, **fields)
    if outcome.gone and delivery.endpoint_id is not None:
        webhook_endpoint_disable(
            endpoint_id=delivery.endpoint_id, reason="the receiver answered 410 Gone"
        )
    return status


def webhook_delivery_send(*, delivery_id: str | uuid.UUID) -> bool:
    """Make one attempt at a delivery if it is due; False when it is not (another run
    has it, or it is done). Safe to run twice and concurrently: it is sent once."""
    attempt = _delivery_claim(delivery_id)
    if attempt is None:
        return False
    _delivery_record(attempt.delivery_id, attempt.attempt, _delivery_post(attempt))
    return True


WEBHOOK_SENDER_LEASE = "webhook-sender"
# A dead sender's lease runs out this long after its last renewal.
WEBHOOK_SENDER_LEASE_SECONDS = 15.0
WEBHOOK_SENDER_RENEW_SECONDS = 5.0
# How long the sender waits for an answer before it looks for newly due deliveries again:
# the delay between an event's commit and its first attempt while the sender runs.
WEBHOOK_SENDER_TICK_SECONDS = 0.2
# Due deliveries looked at per query: enough to fill every free thread in turn.
WEBHOOK_SENDER_CANDIDATES = 200


def _sender_lease_take(holder: str) -> bool:
    from jobs.models import Lease

    now = timezone.now()
    Lease.objects.get_or_create(name=WEBHOOK_SENDER_LEASE)
    return bool(
        Lease.objects.filter(name=WEBHOOK_SENDER_LEASE)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now) | Q(holder=holder))
        .update(
            holder=holder,
            leased_until=now + timedelta(seconds=WEBHOOK_SENDER_LEASE_SECONDS),
        )
    )


def _sender_lease_release(holder: str) -> None:
    from jobs.models import Lease

    Lease.objects.filter(name=WEBHOOK_SENDER_LEASE, holder=holder).update(
        leased_until=None, holder=""
    )


def _sender_budget() -> float:
    # Stop taking new deliveries in time for the last attempts (each up to the receiver's
    # timeout) to end inside the task's timeout.
    timeout = float(settings.Q_TIMEOUT)
    return max(1.0, min(timeout / 2, timeout - 2 * float(settings.WEBHOOK_TIMEOUT_SECONDS) - 5))


def webhooks_send_due(
    *, limit: int | None = None, budget_seconds: float | None = None
) -> dict[str, int]:
    """Send the deliveries that are due: first attempts, retries, and attempts whose
    sender died. Runs in the webhooks cluster, one sender at a time (a lease), until
    nothing is due and nothing is in flight, `limit` attempts were made, or its budget is
    spent; then queues itself again if deliveries are still due.

    The POSTs run on `WEBHOOK_SENDER_THREADS` threads, at most
    `WEBHOOK_WORKSPACE_CONCURRENCY` of them for one workspace, and workspaces take turns
    for free threads (the fewest in flight first, each workspace's longest due first). So a
    receiver that never answers holds only its own workspace's share. The database work
    (claims, outcomes) stays on this thread, never inside a POST.
    """
    budget = budget_seconds if budget_seconds is not None else _sender_budget()
    holder = f"{os.getpid()}-{secrets.token_hex(6)}"
    if not _sender_lease_take(holder):
        return {"sent": 0, "succeeded": 0, "failed": 0, "retrying": 0, "skipped": 1}
    try:
        counts = _WebhookSender(holder, budget, limit).run()
    finally:
        _sender_lease_release(holder)
    # After the release: a delivery committed before this check is seen here, and one
    # committed after it finds the lease free and queues a sender itself.
    if limit is None and WebhookDelivery.objects.due(timezone.now()).exists():
        transaction.on_commit(webhook_sender_ensure)
    return counts


class _WebhookSender:
    """One run of the sender: claims due deliveries in turn across workspaces, posts them
    on threads, records each outcome as it comes."""

    def __init__(self, holder: str, budget: float, limit: int | None) -> None:
        self.holder = holder
        self.deadline = time.monotonic() + budget
        self.limit = limit
        self.threads = int(settings.WEBHOOK_SENDER_THREADS)
        self.cap = int(settings.WEBHOOK_WORKSPACE_CONCURRENCY)
        self.in_flight: dict[Future[_Outcome], tuple[_Attempt, int]] = {}
        self.per_tenant: Counter[int] = Counter()
        # When each workspace last got a thread (a count of claims): of workspaces with as
        # many in flight, the one served longest ago goes first.
        self.last_turn: dict[int, int] = {}
        self.counts = {"sent": 0, "succeeded": 0, "failed": 0, "retrying": 0}
        self.claimed = 0
        self.renew_at = time.monotonic() + WEBHOOK_SENDER_RENEW_SECONDS
        self.lost_lease = False

    def run(self) -> dict[str, int]:
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="webhook") as pool:
            while True:
                now = time.monotonic()
                if now >= self.renew_at:
                    self.renew_at = now + WEBHOOK_SENDER_RENEW_SECONDS
                    self.lost_lease = not _sender_lease_take(self.holder)
                stopping = (
                    self.lost_lease
                    or now >= self.deadline
                    or (self.limit is not None and self.claimed >= self.limit)
                )
                found = 0 if stopping else self._fill(pool)
                if not self.in_flight:
                    if stopping or not found:
                        break
                    continue
                done, _ = wait(
                    list(self.in_flight),
                    timeout=WEBHOOK_SENDER_TICK_SECONDS,
                    return_when=FIRST_COMPLETED,
                )
                for future in done:
                    self._record(future)
        return self.counts

    def _fill(self, pool: ThreadPoolExecutor) -> int:
        """Claim and start due deliveries for the free threads, in turn; the number of
        due deliveries it looked at (0: none is due that a workspace's share allows)."""
        free = self.threads - len(self.in_flight)
        if self.limit is not None:
            free = min(free, self.limit - self.claimed)
        if free <= 0:
            return 1
        full = [tenant_id for tenant_id, n in self.per_tenant.items() if n >= self.cap]
        rows = (
            WebhookDelivery.objects.due(timezone.now())
            .exclude(tenant_id__in=full)
            .in_turn(per_workspace=self.cap)
            .values_list("pk", "tenant_id")[:WEBHOOK_SENDER_CANDIDATES]
        )
        # Rows come in rank order, so a workspace's n-th row is its rank n.
        seen: Counter[int] = Counter()
        candidates: list[tuple[uuid.UUID, int, int]] = []
        for delivery_id, tenant_id in rows:
            seen[tenant_id] += 1
            candidates.append((delivery_id, tenant_id, seen[tenant_id]))
        # The workspaces with the fewest deliveries in flight go first, then the one
        # served longest ago (the sort is stable: then the longest due).
        candidates.sort(key=lambda c: (self.per_tenant[c[1]] + c[2], self.last_turn.get(c[1], -1)))
        for delivery_id, tenant_id, _rank in candidates:
            if free <= 0:
                break
            if self.per_tenant[tenant_id] >= self.cap:
                continue
            attempt = _delivery_claim(delivery_id)
            if attempt is None:
                continue
            self.last_turn[tenant_id] = self.claimed
            self.claimed += 1
            free -= 1
            self.per_tenant[tenant_id] += 1
            self.in_flight[pool.submit(_delivery_post, attempt)] = (attempt, tenant_id)
        return len(candidates)

    def _record(self, future: Future[_Outcome]) -> None:
        attempt, tenant_id = self.in_flight.pop(future)
        self.per_tenant[tenant_id] -= 1
        try:
            outcome = future.result()
        except Exception as e:  # a bug in the POST's path: the attempt counts as failed
            logger.exception("webhook delivery %s: the attempt raised", attempt.delivery_id)
            outcome = _Outcome(None, f"internal_error: {type(e).__name__}", "")
        status = _delivery_record(attempt.delivery_id, attempt.attempt, outcome)
        self.counts["sent"] += 1
        key = "retrying" if status == DeliveryStatus.PENDING else status
        self.counts[key] = self.counts.get(key, 0) + 1


# -- the operators' audit trail ----------------------------------------------------------


class OperatorActionError(CodedError):
    """A refused audit record (``reason_required``, ``invalid_action``, ``invalid_details``):
    the change it was to record must not be made either."""


def _details_check(value: Any, path: str = "details") -> None:
    # Amounts must stay exact: whole numbers, strings or Decimals, never floats.
    if isinstance(value, float):
        raise OperatorActionError("invalid_details", f"{path}: use whole numbers, not floats.")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _details_check(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _details_check(item, f"{path}[{i}]")


def operator_action_record(
    *,
    actor: User,
    action: str,
    tenant: Tenant | None = None,
    target: str = "",
    details: Mapping[str, Any] | None = None,
    reason: str,
) -> OperatorAction:
    """Append one row to the operators' audit trail: `actor` did `action` to `target`
    (in `tenant`), because `reason`. Call it inside the transaction that makes the
    change, so the change and its record commit or roll back together; a blank reason
    raises ``reason_required`` before anything is written."""
    if action not in OperatorActionCode.values:
        raise OperatorActionError("invalid_action", f"action: unknown operator action {action!r}.")
    reason = (reason or "").strip()
    if not reason:
        raise OperatorActionError(
            "reason_required", "reason: say why (it goes in the audit trail)."
        )
    _details_check(details or {})
    return OperatorAction.objects.create(
        actor=actor,
        actor_email=actor.email,
        action=action,
        tenant=tenant,
        tenant_name=tenant.name if tenant is not None else "",
        tenant_slug=tenant.slug if tenant is not None else "",
        target=target[:300],
        details=dict(details or {}),
        reason=reason,
    )


def membership_operator_add(
    *, tenant: Tenant, user: User, role: str, actor: User, reason: str
) -> Membership:
    """An operator puts `user` in `tenant` with `role`, recorded in the audit trail."""
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    with transaction.atomic():
        membership = Membership.objects.create(tenant=tenant, user=user, role=role)
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.MEMBER_ADD,
            tenant=tenant,
            target=f"user {user.email}",
            details={"role": role},
            reason=reason,
        )
    return membership


def membership_operator_role_set(
    *, membership_id: int, role: str, actor: User, reason: str
) -> Membership:
    """An operator changes a member's role (a workspace keeps an owner), recorded in the
    audit trail with the role before and after; no record when nothing changes."""
    if role not in Role.values:
        raise AccountError("invalid_role", f"role: must be one of {', '.join(Role.values)}.")
    with transaction.atomic():
        target = (
            Membership.objects.select_for_update()
            .select_related("user", "tenant")
            .get(pk=membership_id)
        )
        before = target.role
        if before == role:
            return target
        if target.is_owner and _other_owners(target) == 0:
            raise AccountError(
                "last_owner", "role: a workspace needs an owner; make someone else owner first."
            )
        # The reason is checked before the change is written.
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.ROLE_CHANGE,
            tenant=target.tenant,
            target=f"user {target.user.email}",
            details={"before": before, "after": role},
            reason=reason,
        )
        target.role = role
        target.save(update_fields=["role"])
    return target


def membership_operator_remove(*, membership_id: int, actor: User, reason: str) -> None:
    """An operator removes a member (never a workspace's last owner), recorded in the
    audit trail."""
    with transaction.atomic():
        target = (
            Membership.objects.select_for_update()
            .select_related("user", "tenant")
            .get(pk=membership_id)
        )
        if target.is_owner and _other_owners(target) == 0:
            raise AccountError(
                "last_owner",
                f"{target.user.email} is the last owner of {target.tenant.name}: "
                "make someone else owner first.",
            )
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.MEMBER_REMOVE,
            tenant=target.tenant,
            target=f"user {target.user.email}",
            details={"role": target.role},
            reason=reason,
        )
        target.delete()


def api_key_operator_revoke(*, key_id: str | uuid.UUID, actor: User, reason: str) -> bool:
    """An operator revokes a key (it stops working at once), recorded in the audit trail.
    False, and no record, when it was revoked already."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().select_related("tenant").get(pk=key_id)
        if key.revoked_at is not None:
            return False
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.API_KEY_REVOKE,
            tenant=key.tenant,
            target=f"API key {key.prefix} ({key.name})",
            reason=reason,
        )
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return True
