"""An operator's refund of a succeeded job: the credits back in the ledger and the
action in the operators' audit trail, together."""

from __future__ import annotations

from django.db import transaction

from accounts import services as account_services
from accounts.models import CreditEntry, OperatorActionCode, User
from jobs.models import Job


def job_operator_refund(*, job: Job, actor: User, memo: str) -> CreditEntry:
    """Give a succeeded job's credits back (a result the shop could not use), with
    `memo`, the why: in the ledger and in the operators' audit trail, which commit or roll
    back together. Refused with the ledger's CreditError (`memo_required`,
    `not_refundable`, `already_refunded`)."""
    with transaction.atomic():
        entry = account_services.credits_refund(job=job, user=actor, memo=memo)
        account_services.credit_entry_operator_record(
            entry=entry,
            actor=actor,
            action=OperatorActionCode.CREDITS_REFUND,
            tenant=job.tenant,
            target=f"job {job.pk}",
            reason=memo,
        )
    return entry
