"""The circuit breaker for Segmind's 406 (out of credit): a pause per key, its incidents,
its probes, clearing it, and the email to operators."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import OperatorActionCode, User
from jobs.models import (
    Job,
    JobStatus,
    ProviderIncident,
    ProviderPause,
    provider_waiting_message,
)
from jobs.services.dispatch import dispatcher_ensure
from jobs.services.segmind_keys import SegmindKey, segmind_key_for

logger = logging.getLogger(__name__)


def provider_pause_for(*, key: SegmindKey | None) -> ProviderPause | None:
    """The open pause on `key`, if Segmind said its account is out of credit."""
    if key is None:
        return None
    return ProviderPause.objects.open().filter(key_id=key.key_id).first()


def _incident_record(
    *,
    pause: ProviderPause | None,
    job_id: uuid.UUID | str,
    key_id: str,
    own_key: bool,
    message: str,
) -> None:
    tenant_id = Job.objects.filter(pk=job_id).values_list("tenant_id", flat=True).first()
    ProviderIncident.objects.create(
        pause=pause,
        tenant_id=tenant_id,
        job_id=job_id,
        key_id=key_id,
        own_key=own_key,
        code="provider_insufficient_credits",
        message=message,
    )


def provider_pause_open(
    *, job_id: uuid.UUID | str, key: SegmindKey, provider_message: str = ""
) -> bool:
    """Segmind refused a submit of `job_id` with `key` for want of credit (406).

    The job waits (`waiting_for_provider`, its credits still held) whether or not it is
    the first to meet the refusal, so that every job held back by one cause tells the
    shop one story and can be canceled with its credits back. The first refusal for the
    key opens a pause on it and emails the operators once; each refusal records an
    incident; a refused probe puts the next one off by SEGMIND_PAUSE_SECONDS. Two racers
    open one pause (a unique constraint). Returns True when this refusal opened the pause.
    """
    now = timezone.now()
    seconds = timedelta(seconds=settings.SEGMIND_PAUSE_SECONDS)
    with transaction.atomic():
        pause = ProviderPause.objects.open().select_for_update().filter(key_id=key.key_id).first()
        opened = False
        if pause is None:
            try:
                with transaction.atomic():
                    pause = ProviderPause.objects.create(
                        key_id=key.key_id,
                        tenant_id=key.tenant_id,
                        message=provider_message[:1000],
                        opened_at=now,
                        paused_until=now + seconds,
                    )
                opened = True
            except IntegrityError:
                # Another run opened it first: this job joins the pause.
                pause = ProviderPause.objects.open().select_for_update().get(key_id=key.key_id)
        if opened:
            transaction.on_commit(partial(provider_pause_notify, pause_id=pause.pk))
        else:
            changes: dict[str, Any] = {"occurrences": F("occurrences") + 1}
            if pause.probe_job_id is not None and str(pause.probe_job_id) == str(job_id):
                # The probe was refused too: the next one goes after another pause.
                changes.update(paused_until=now + seconds, probe_job=None)
            ProviderPause.objects.filter(pk=pause.pk).update(**changes)
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, provider_request_id="").update(
            status=JobStatus.WAITING_FOR_PROVIDER,
            waiting_since=Coalesce(F("waiting_since"), Value(now)),
            # Segmind answered: not an attempt lost to a crash (the sweeper counts those).
            attempts=Greatest(F("attempts") - 1, Value(0)),
        )
        _incident_record(
            pause=pause,
            job_id=job_id,
            key_id=key.key_id,
            own_key=key.own,
            message=provider_waiting_message(own_key=key.own, last4=key.last4),
        )
    return opened


def provider_pause_clear(*, pause_id: int, by: User | None, reason: str) -> int | None:
    """Close a pause (an operator, or an accepted probe) and send the jobs it held back
    to the queue. Returns how many resumed, or None if it was already cleared."""
    with transaction.atomic():
        cleared = ProviderPause.objects.filter(pk=pause_id, cleared_at__isnull=True).update(
            cleared_at=timezone.now(), cleared_by=by, cleared_reason=reason[:200]
        )
        if not cleared:
            return None
        pause = ProviderPause.objects.get(pk=pause_id)
        # waiting_since is kept: the wait limit counts from when a job first waited.
        resumed = Job.objects.waiting_for(pause).update(status=JobStatus.QUEUED)
        if resumed:
            transaction.on_commit(dispatcher_ensure)
    logger.info("Segmind pause %s cleared (%s): %d job(s) resumed", pause_id, reason, resumed)
    return resumed


def provider_pause_operator_clear(*, pause: ProviderPause, actor: User, reason: str) -> int | None:
    """An operator clears a pause (`provider_pause_clear`) and the operators' audit trail
    records it, with `reason`, in the same transaction. Returns how many jobs resumed, or
    None if it was already cleared (then nothing is recorded)."""
    with transaction.atomic():
        resumed = provider_pause_clear(pause_id=pause.pk, by=actor, reason=reason)
        if resumed is not None:
            account_services.operator_action_record(
                actor=actor,
                action=OperatorActionCode.PAUSE_CLEAR,
                tenant=pause.tenant,
                target=f"Segmind pause {pause.pk} on {pause.owner}",
                details={"resumed_jobs": resumed, "occurrences": pause.occurrences},
                reason=reason,
            )
    return resumed


def provider_probes_start() -> int:
    """For each open pause past its `paused_until` with no probe under way, send one
    waiting job back to the queue as its probe: if Segmind takes it, the pause clears.
    Called by the sweeper every minute and by the dispatcher. Returns the probes started."""
    now = timezone.now()
    started = 0
    for pause in ProviderPause.objects.open().filter(paused_until__lte=now):
        probe_id = pause.probe_job_id
        if (
            probe_id is not None
            and Job.objects.filter(
                pk=probe_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
            ).exists()
        ):
            continue
        candidate = (
            Job.objects.waiting_for(pause)
            .order_by("waiting_since", "created_at")
            .values_list("pk", flat=True)
            .first()
        )
        if candidate is None:
            continue
        with transaction.atomic():
            # Both conditional: a racing sweeper or an operator's clear wins cleanly.
            if not ProviderPause.objects.filter(
                pk=pause.pk, cleared_at__isnull=True, probe_job=probe_id
            ).update(probe_job=candidate):
                continue
            if not Job.objects.filter(pk=candidate, status=JobStatus.WAITING_FOR_PROVIDER).update(
                status=JobStatus.QUEUED
            ):
                transaction.set_rollback(True)
                continue
        started += 1
    if started:
        transaction.on_commit(dispatcher_ensure)
    return started


def jobs_waiting_unpaused_resume() -> int:
    """Send back to the queue the waiting jobs that no open pause holds back: a job made
    waiting just as an operator cleared its pause (its transaction had read the pause
    open) would otherwise wait until the limit. The sweeper's safety net."""
    owners = set(ProviderPause.objects.open().values_list("tenant_id", flat=True))
    held = Q(own_key=True, tenant_id__in=[t for t in owners if t is not None])
    if None in owners:
        held |= Q(own_key=False)
    resumed = (
        Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER)
        .exclude(held)
        .update(status=JobStatus.QUEUED)
    )
    if resumed:
        logger.warning("%d waiting job(s) had no open pause; sent back to the queue", resumed)
        transaction.on_commit(dispatcher_ensure)
    return resumed


def provider_pauses_stale_clear() -> int:
    """Clear the pauses on workspaces' own keys that are no longer their key (the shop
    entered a new one, or removed it): its jobs go back to the queue, to run on the new
    key (or fail clearly without one)."""
    cleared = 0
    for pause in ProviderPause.objects.open().filter(tenant__isnull=False).select_related("tenant"):
        assert pause.tenant is not None
        current = segmind_key_for(tenant=pause.tenant)
        if current is None or current.key_id != pause.key_id:
            reason = "the workspace changed its own Segmind key"
            cleared += provider_pause_clear(pause_id=pause.pk, by=None, reason=reason) is not None
    return cleared


def provider_pause_recipients() -> list[str]:
    """Who hears of a pause: the ADMINS setting and every active staff user."""
    emails = [email for _, email in settings.ADMINS]
    emails += User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True)
    unique: dict[str, str] = {}
    for email in emails:
        if email:
            unique.setdefault(email.lower(), email)
    return list(unique.values())


def provider_pause_notify(*, pause_id: int) -> bool:
    """Email the operators that Segmind refused a key for want of credit (once per pause,
    after the commit that opened it). Names the key's owner, never the key."""
    pause = ProviderPause.objects.select_related("tenant").filter(pk=pause_id).first()
    recipients = provider_pause_recipients()
    if pause is None or not recipients:
        if pause is not None:
            logger.warning("Segmind pause %s opened, but there is nobody to email", pause_id)
        return False
    url = settings.SITE_URL + reverse("admin:jobs_providerpause_change", args=[pause.pk])
    if pause.tenant is not None:
        subject = f"Segmind is out of credit on {pause.tenant.name}'s own key"
        who = (
            f"the Segmind account behind the own key of the workspace {pause.tenant.name} "
            f"({pause.tenant.slug}, key ending {pause.tenant.segmind_key_last4 or '?'})"
        )
        after = "The shop has been told, on its jobs, to top up its Segmind account."
    else:
        subject = "Segmind is out of credit on the platform key: jobs are waiting"
        who = "the Segmind account behind the platform's key (SEGMIND_API_KEY)"
        after = "Top up the Segmind account, then clear the pause in the admin."
    body = (
        f"Segmind answered 406 (insufficient credits) at {pause.opened_at:%Y-%m-%d %H:%M:%S %Z} "
        f"for {who}.\n\n"
        "The job it refused waits (status waiting_for_provider), its credits still held, "
        "and so does every job for this key until the pause clears: none of them is "
        "charged, and the shop can cancel any of them with its credits back. At "
        f"{pause.paused_until:%H:%M:%S %Z} one of them is sent as a probe: if Segmind takes "
        "it, the others resume; if not, the next probe is "
        f"{settings.SEGMIND_PAUSE_SECONDS} seconds later. Jobs still waiting after "
        f"{settings.SEGMIND_WAIT_LIMIT_SECONDS} seconds fail, and nothing is charged.\n\n"
        f"{after}\n\nThe pause (key id {pause.key_id}): {url}\n"
    )
    try:
        send_mail(
            subject=f"[ProductStudio] {subject}",
            message=body,
            from_email=settings.SERVER_EMAIL,
            recipient_list=recipients,
        )
    except Exception:
        # The pause and the banner stand without the email; the dispatcher goes on.
        logger.exception("emailing the operators about Segmind pause %s failed", pause_id)
        return False
    return True
