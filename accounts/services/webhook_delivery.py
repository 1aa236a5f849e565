"""Webhook deliveries: emitting events, claiming, posting and recording
attempts, and the sender that serves workspaces in turn.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, Protocol

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import (
    JOB_EVENT_TYPES,
    DeliveryStatus,
    Lease,
    Tenant,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from accounts.services.webhooks import (
    WEBHOOK_EXCERPT_BYTES,
    WEBHOOK_MAX_ATTEMPTS,
    WEBHOOK_RETRY_CAPS_SECONDS,
    WebhookError,
    webhook_endpoint_disable,
    webhook_endpoint_secret,
    webhook_headers,
    webhook_manager_check,
    webhook_workspace_secret,
)

logger = logging.getLogger(__name__)


class EventJob(Protocol):
    """What an event needs of the job it reports (a ``jobs.models.Job`` is one): its id
    and its own ``webhook_url``. Events take this, not the model, so accounts never
    imports jobs."""

    @property
    def pk(self) -> Any: ...

    @property
    def webhook_url(self) -> str: ...


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
    job: EventJob | None = None,
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
        "job_id": job.pk if job is not None else None,
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

    held = Lease.objects.filter(name=WEBHOOK_SENDER_LEASE, leased_until__gt=timezone.now())
    if not held.exists():
        async_task(
            "accounts.tasks.webhooks_send_due",
            task_name=f"webhooks-{time.time():.0f}",
            group="webhooks",
            cluster=settings.WEBHOOK_Q_CLUSTER,
        )


def webhook_test_send(
    *, tenant: Tenant, endpoint_id: str, by: User | None = None
) -> WebhookDelivery:
    """Send a ``webhook.test`` event to one of `tenant`'s endpoints now, and return its
    delivery with the outcome of this first attempt (retried later like any other).
    `by` must manage the workspace's webhooks (None: an API key)."""
    webhook_manager_check(tenant=tenant, by=by)
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
