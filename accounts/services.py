"""Account operations: sign-up, workspaces, invitations, roles and API keys.

Views, commands and admin actions call these; they hold the rules (who may do what,
the last owner stays) so every door enforces the same ones.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import (
    API_KEY_PREFIX,
    ApiKey,
    CreditEntry,
    CreditKind,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
)
from productstudio.errors import CodedError

if TYPE_CHECKING:
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
    """Create a workspace and make `owner` its owner."""
    name = name.strip()
    if not name:
        raise AccountError("invalid_name", "name: a workspace needs a name.")
    with transaction.atomic():
        tenant = Tenant.objects.create(name=name[:100], slug=_unique_slug(name))
        Membership.objects.create(user=owner, tenant=tenant, role=Role.OWNER)
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


def _invitation_url(token: str) -> str:
    return settings.SITE_URL + reverse("invitation_accept", args=[token])


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
    context = {
        "tenant": tenant,
        "inviter": invited_by,
        "url": _invitation_url(token),
        "days": settings.INVITATION_MAX_AGE_DAYS,
    }
    send_mail(
        subject=f"You're invited to {tenant.name} on ProductStudio",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[email],
    )
    return invitation, token


def invitation_lookup(*, token: str) -> Invitation:
    """The pending invitation behind a link's token, or an AccountError."""
    invitation = Invitation.objects.by_token(token).select_related("tenant").first()
    if invitation is None or invitation.accepted_at is not None:
        raise AccountError("invalid_invitation", "This invitation link is not valid any more.")
    if invitation.is_expired:
        raise AccountError("expired_invitation", "This invitation has expired: ask for a new one.")
    return invitation


def invitation_accept(*, token: str, user: User) -> Membership:
    """Add `user` to the invitation's workspace (once; a second use of the link is refused)."""
    with transaction.atomic():
        invitation = invitation_lookup(token=token)
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


def invitation_signup(*, token: str, password: str, name: str = "") -> User:
    """Create the invited person's account (with the invited email) and accept the invitation."""
    invitation = invitation_lookup(token=token)
    with transaction.atomic():
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise AccountError("email_taken", "An account with this email exists: log in instead.")
        user = User.objects.create_user(
            email=invitation.email, password=password, name=name.strip()
        )
        invitation_accept(token=token, user=user)
    return user


def invitation_revoke(*, tenant: Tenant, by: User, invitation_id: int) -> None:
    """Withdraw a pending invitation."""
    actor = _actor(tenant, by)
    if not actor.can_manage_team:
        raise AccountError("forbidden", "Only owners and admins can withdraw invitations.")
    Invitation.objects.for_tenant(tenant).pending().filter(pk=invitation_id).delete()


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


def api_key_create(*, tenant: Tenant, name: str, created_by: User | None = None) -> NewApiKey:
    """Create an API key for `tenant`; the plain key exists only in the returned value."""
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


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its last-used time touched; None otherwise."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, secret = raw_key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not secret:
        return None
    key = ApiKey.objects.active().select_related("tenant").filter(prefix=prefix).first()
    if key is None or not key.matches(secret):
        return None
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
    return key


def api_key_revoke(*, tenant: Tenant, key_id: str) -> None:
    """Revoke one of `tenant`'s keys; it stops working at once."""
    ApiKey.objects.for_tenant(tenant).active().filter(pk=key_id).update(revoked_at=timezone.now())


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
    lock: concurrent entries for a tenant queue here, so totals never drift."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    balance = tenant.credit_balance + amount
    held_after = tenant.credit_held + held
    if balance < 0:
        raise CreditError(
            "insufficient_credits",
            f"This needs {-amount} credits and the workspace has {tenant.credit_balance}.",
        )
    Tenant.objects.filter(pk=tenant_id).update(credit_balance=balance, credit_held=held_after)
    return CreditEntry.objects.create(
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
        return _credit_append(
            tenant_id=tenant.pk, kind=CreditKind.ADJUSTMENT, amount=amount, user=user, memo=memo
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
    from jobs import segmind  # jobs depends on accounts, not the other way round

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
