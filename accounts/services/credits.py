"""Credits: the ledger (grants, holds, captures, releases, refunds), the low-balance
warning and its threshold, and the usage pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncMonth
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import (
    CreditEntry,
    CreditEntryQuerySet,
    CreditKind,
    Role,
    Tenant,
    User,
    WebhookEventType,
)
from accounts.services.members import _actor
from accounts.services.webhook_delivery import webhook_event_emit
from productstudio.lib.errors import CodedError

logger = logging.getLogger(__name__)


class CreditedJob(Protocol):
    """What the ledger needs of a job (a ``jobs.models.Job`` is one): its id. The ledger
    takes this, not the model, so accounts never imports jobs."""

    @property
    def pk(self) -> Any: ...


# -- credits ---------------------------------------------------------------------------


class CreditError(CodedError):
    """A refused credit operation (``insufficient_credits``, ``invalid_amount``)."""


def _credit_append(
    *,
    tenant_id: int,
    kind: str,
    amount: int,
    held: int = 0,
    job: CreditedJob | None = None,
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
        job_id=job.pk if job is not None else None,
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


def credits_hold(
    *, tenant: Tenant, job: CreditedJob, amount: int, user: User | None = None
) -> CreditEntry:
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
        return CreditEntry.objects.get(job_id=job.pk, kind=CreditKind.HOLD)


def _credits_settle(*, job: CreditedJob, kind: str) -> CreditEntry | None:
    """Capture or release a job's hold, once. None when the job holds nothing, or was
    already settled the other way (a job is captured or released, never both)."""
    try:
        with transaction.atomic():
            hold = CreditEntry.objects.filter(job_id=job.pk, kind=CreditKind.HOLD).first()
            if hold is None:
                return None
            # Taking the tenant's lock first makes the check below race-free.
            Tenant.objects.select_for_update().get(pk=hold.tenant_id)
            settled = CreditEntry.objects.filter(
                job_id=job.pk, kind__in=[CreditKind.CAPTURE, CreditKind.RELEASE]
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
        return CreditEntry.objects.filter(job_id=job.pk, kind=kind).first()


def credits_refund(*, job: CreditedJob, user: User, memo: str) -> CreditEntry:
    """An operator gives back what a succeeded job spent (a result the shop could not
    use): a ``refund`` entry for the job, once."""
    if not memo.strip():
        raise CreditError("memo_required", "memo: say why the job is refunded.")
    try:
        with transaction.atomic():
            capture = CreditEntry.objects.filter(job_id=job.pk, kind=CreditKind.CAPTURE).first()
            hold = CreditEntry.objects.filter(job_id=job.pk, kind=CreditKind.HOLD).first()
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


def credits_capture(*, job: CreditedJob) -> CreditEntry | None:
    """The job succeeded: its held credits are spent."""
    return _credits_settle(job=job, kind=CreditKind.CAPTURE)


def credits_release(*, job: CreditedJob) -> CreditEntry | None:
    """The job failed, was canceled or expired: its held credits go back to the shop."""
    return _credits_settle(job=job, kind=CreditKind.RELEASE)


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
