"""One dispatcher run (`_Dispatcher`): the database thread and the event loop taking
turns; each key's budget; claiming jobs in turn, submitting and polling them."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts import services as account_services
from accounts.models import (
    SEGMIND_DEFAULT_PLAN,
    SEGMIND_PLAN_PER_MINUTE,
    Lease,
    Tenant,
    WebhookEndpoint,
)
from jobs import catalog, services
from jobs.dispatcher.lease import (
    NEVER_SERVED,
    RENEW_EVERY_SECONDS,
    _lease_row_lock,
    _served_from,
    _served_order,
    _take_lease,
)
from jobs.dispatcher.outcomes import (
    _Completed,
    _Event,
    _Failed,
    _OutOfCredit,
    _Released,
    _Submitted,
    _Throttled,
)
from jobs.dispatcher.outputs import _fetch_outputs
from jobs.dispatcher.submissions import _client, poll_interval, request_store, segmind_payload
from jobs.engines.segmind import client as segmind
from jobs.engines.segmind import ratelimit
from jobs.models import Asset, Job, JobStatus, ProviderPause, SegmindKeyBudget
from jobs.services.dispatch import LEASE
from productstudio.lib.context import job_id_var
from productstudio.lib.errors import CodedError

logger = logging.getLogger(__name__)

# In-flight requests this dispatcher does not know of (left by a dispatcher that died)
# are looked for this often; a new dispatcher picks them all up when it starts.
RESCAN_SECONDS = 10.0
# How long the database thread waits for news from the event loop before it looks for
# newly queued jobs again: the delay between a job's commit and its submit.
TICK_SECONDS = 0.1
CLAIM_BATCH = 200
# Events that arrive this close together are applied in one transaction.
BATCH_WINDOW_SECONDS = 0.05
# Jobs claimed and not yet submitted, at most: claiming is paced by the submits, so a
# burst of new jobs does not starve the polls of requests already paid for.
SUBMIT_WINDOW = 32
# New requests are started no faster than this one thread can follow them closely:
# each costs the dispatcher CPU over its life (submit, polls, download, storing), so it
# takes on `TARGET_LOAD / cost` of them per second, the cost measured as it goes. Started
# at a steady rate, requests also finish at a steady rate rather than in waves. Jobs
# beyond that wait, queued, rather than finished results waiting unfetched and every
# job's latency growing. Polls answered late halve the rate at once.
TARGET_LOAD = 0.85
FIRST_COST_SECONDS = 0.02
LAG_HIGH_SECONDS = 0.5
# A claimed job waits at most this long at its key's gate for a slot; longer, it goes
# back to the queue (keeping its place) rather than look running while it waits.
SLOT_WAIT_SECONDS = 2.0
# Jobs are claimed for the slots that open within this long, not only for those open now:
# claimed a tick late, a job would leave its slot empty for up to a tick, and with the
# key's window full, every send a tick late makes the one a window later late too (at
# 300/min scaled ten times, the pace fell to 4.84 of 5 a second). Short, so that another
# workspace's new job waits behind few claimed ones.
CLAIM_AHEAD_SECONDS = 2 * TICK_SECONDS

# A job whose key cannot be had fails with these (nothing was sent, nothing is charged).
OWN_KEY_MISSING = (
    "own_key_missing",
    "This workspace's own Segmind key can no longer be read (it was removed, or must be "
    "entered again), so the image could not be made. Enter the key again in the "
    "workspace's settings, then try again. No credit was taken.",
)
PLATFORM_KEY_MISSING = (
    "provider_not_configured",
    "Segmind is not set up on this studio any more, so the image could not be made. "
    "No credit was taken.",
)


def _stored_assets(events: list[_Event]) -> list[Asset]:
    return [asset for e in events if isinstance(e, _Completed) for asset in e.stored]


def _discard_unclaimed(fetched: Future[_Completed | _Failed]) -> None:
    if not fetched.cancelled() and fetched.exception() is None:
        services.asset_files_discard(assets=_stored_assets([fetched.result()]))


class _Dispatcher:
    """One run. A single thread takes turns: it runs the event loop until news arrives
    (or a tick passes), then applies the news to the database with the loop paused.
    One thread, so no lock and no contention for the interpreter: what the dispatcher
    costs is what it does. Only the input reads, the downloads and the writes of results
    to storage run on other threads, because a slow image host or store must hold up
    neither the loop nor the database thread (which renews the lease)."""

    def __init__(self, holder: str, budget: float) -> None:
        self.holder = holder
        self.deadline = time.monotonic() + budget
        self.events: list[_Event] = []
        # Jobs with a coroutine on the loop; each coroutine ends with one event for it.
        self.pending: set[uuid.UUID] = set()
        self.submitting: set[uuid.UUID] = set()
        # Each model's recent inference time (seconds), for the polling schedule; what
        # the last dispatcher learnt is kept on the lease.
        stored = Lease.objects.filter(name=LEASE).values_list("state", flat=True).first()
        self.expected: dict[str, float] = {
            str(model): float(seconds)
            for model, seconds in ((stored or {}).get("expected") or {}).items()
            if isinstance(seconds, int | float) and seconds > 0
        }
        # How late poll answers come (seconds, smoothed): the dispatcher's own load.
        self.lag = 0.0
        # Jobs per second to start, and the bucket that paces them (see TARGET_LOAD).
        self.rate = TARGET_LOAD / FIRST_COST_SECONDS
        self.tokens = self.rate / 4
        self.refilled = self.adjust_at = time.monotonic()
        self.cpu_start = time.process_time()
        self.held_back = False
        self.stopping = False
        self.renew_at = time.monotonic() + RENEW_EVERY_SECONDS
        self.counts = {"submitted": 0, "polled": 0, "finished": 0, "skipped": 0, "throttled": 0}
        self.loop = asyncio.new_event_loop()
        self.news = asyncio.Event()
        self.io = ThreadPoolExecutor(
            max_workers=settings.SEGMIND_DOWNLOAD_THREADS, thread_name_prefix="segmind-io"
        )
        # One client per key (by key id), made when a job first needs it.
        self.clients: dict[str, segmind.SegmindClient] = {}
        self.platform_key = services.segmind_key_for(tenant=None)
        # Each workspace's own key, decrypted once per run (None: it has none any more).
        self.tenant_keys: dict[int, services.SegmindKey | None] = {}
        # Each key's budget and 429 gate (by key id), carried on from the saved state;
        # the jobs claimed for each key and not sent yet; each workspace's own key's rate.
        self.platform_rate = ratelimit.parse_rate(settings.SEGMIND_RATE_LIMIT)
        self.counts_polls = settings.SEGMIND_RATE_LIMIT_COUNTS_POLLS
        self.saved_gates: dict[str, dict[str, Any]] = dict(
            SegmindKeyBudget.objects.values_list("key_id", "state")
        )
        self.gates: dict[str, ratelimit.KeyGate] = {}
        self.gate_tenants: dict[str, int | None] = {}
        self.reserved: Counter[str] = Counter()
        # When each workspace (and key: own or not) last had a job claimed, for turns:
        # the last dispatcher's order carries on (below zero, oldest first), so a hand-over
        # does not give the turn back to whoever's job is oldest.
        self.served: dict[tuple[int, bool], int] = _served_from(stored)
        self.claims = 0
        self.tenant_rates: dict[int, ratelimit.Rate] = {}
        self.warned_poll_429 = False
        # Probes under way: job id -> the pause that an accepted submit clears.
        self.probes: dict[uuid.UUID, int] = {}
        # The coroutines that are only waiting or polling, which a shutdown may cancel
        # (a submit or a download in progress is left to finish).
        self.idle: dict[uuid.UUID, asyncio.Task[None]] = {}

    # --- the database side -------------------------------------------------------------

    def run(self) -> dict[str, int]:
        try:
            rescan_at = time.monotonic() + RESCAN_SECONDS
            self._pick_up_in_flight()
            while True:
                now = time.monotonic()
                self._renew_lease()
                if not self.stopping and now >= self.deadline:
                    self._stop()
                found = 0
                if not self.stopping:
                    if now >= rescan_at:
                        rescan_at = now + RESCAN_SECONDS
                        self._pick_up_in_flight()
                        # A pause due for its probe sends one waiting job back to the queue.
                        services.provider_probes_start()
                    found = self._claim_queued(now)
                self._drain(TICK_SECONDS if self.pending or self.held_back else 0)
                if not self.pending and (self.stopping or (not found and not self.held_back)):
                    break
            self._stop()
        finally:
            # Normally nothing is left on the loop; after an error, what is left is
            # cancelled: its jobs stay in flight for the next dispatcher.
            self.loop.run_until_complete(self._close())
            self.io.shutdown(wait=True)
            self.loop.close()
            # Results stored for events that were never applied (after an error): the
            # jobs stay in flight, and their next poll stores them again.
            if self.events:
                services.asset_files_discard(assets=_stored_assets(self.events))
        return self.counts

    def _start(self, coro: Coroutine[Any, Any, None], *, job_id: object) -> None:
        # Each job's coroutine is a task with its own context: its log lines carry its id.
        context = contextvars.copy_context()
        context.run(job_id_var.set, str(job_id))
        self.loop.create_task(coro, context=context)

    def _emit(self, event: _Event) -> None:
        self.events.append(event)
        self.news.set()

    async def _wait_for_news(self, timeout: float) -> None:
        if not self.events:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.news.wait(), timeout)
        # Let what is about to finish finish: fewer, larger transactions.
        await asyncio.sleep(BATCH_WINDOW_SECONDS if self.events else 0)
        self.news.clear()

    def _admit(self, now: float) -> int:
        """How many new jobs may be claimed now (a token bucket at the sustainable rate)."""
        if not self.pending:
            self.lag = 0.0
        if now >= self.adjust_at:
            self.adjust_at = now + 1.0
            done = self.counts["finished"]
            if self.lag > LAG_HIGH_SECONDS:
                self.rate = max(1.0, self.rate / 2)
            elif done >= 20:
                # Work under way is counted as half done.
                cost = (time.process_time() - self.cpu_start) / (done + len(self.pending) / 2)
                self.rate = TARGET_LOAD / max(cost, 1e-4)
        self.tokens = min(self.rate, self.tokens + (now - self.refilled) * self.rate)
        self.refilled = now
        return int(self.tokens)

    def lease_state(self) -> dict[str, Any]:
        """What the next dispatcher carries on: the models' inference times, and the
        order in which workspaces were last served (oldest first; the most recent
        SERVED_KEPT), for turns."""
        return {"expected": self.expected, "served": _served_order(self.served)}

    def _renew_lease(self) -> None:
        if time.monotonic() < self.renew_at:
            return
        self.renew_at = time.monotonic() + RENEW_EVERY_SECONDS
        if not _take_lease(self.holder, self.lease_state()) and not self.stopping:
            logger.warning("the Segmind dispatcher lost its lease; stopping")
            self._stop()
            return
        self.save_gates()

    # --- each key's budget ---------------------------------------------------------------

    def _gate(self, key: services.SegmindKey) -> ratelimit.KeyGate:
        gate = self.gates.get(key.key_id)
        if gate is None:
            if key.tenant_id is None:
                rate = self.platform_rate
            else:
                default = ratelimit.Rate(SEGMIND_PLAN_PER_MINUTE[SEGMIND_DEFAULT_PLAN], 60.0)
                rate = self.tenant_rates.get(key.tenant_id, default)
            gate = ratelimit.KeyGate.from_state(
                rate,
                self.saved_gates.get(key.key_id),
                retry_after_max=settings.SEGMIND_RETRY_AFTER_MAX_SECONDS,
            )
            gate.dirty = True  # its row shows operators the key's budget from the start
            self.gates[key.key_id] = gate
            self.gate_tenants[key.key_id] = key.tenant_id
        return gate

    def _room(self, key_id: str, gate: ratelimit.KeyGate, now: float) -> int:
        """Jobs that may be claimed for this key now: its budget's slots free now or
        within CLAIM_AHEAD_SECONDS, less the jobs claimed and not sent yet, less the polls
        waiting (they go first)."""
        waiting = gate.polls_waiting if self.counts_polls else 0
        return gate.available_within(now, CLAIM_AHEAD_SECONDS) - self.reserved[key_id] - waiting

    def save_gates(self) -> None:
        """Write the keys' budgets that changed (at renewals and at the end of a run)."""
        now = time.time()
        for key_id, gate in self.gates.items():
            if not gate.dirty:
                continue
            gate.used(now)  # forget what fell out of the window
            gate.dirty = False
            SegmindKeyBudget.objects.update_or_create(
                key_id=key_id,
                defaults={
                    "tenant_id": self.gate_tenants.get(key_id),
                    "limit": gate.rate.limit,
                    "window_seconds": gate.rate.window,
                    "adaptive_limit": gate.adaptive,
                    "closed_until": datetime.fromtimestamp(gate.closed_until, UTC)
                    if gate.closed_until > now
                    else None,
                    "state": gate.to_state(),
                },
            )

    async def _slot(self, gate: ratelimit.KeyGate, *, poll: bool) -> float | None:
        """Wait for a slot in the key's budget and take it; returns when (0.0 for a poll
        that is not counted). A poll waits as long as it takes (and goes before
        submissions); a submission gives up (None) when the gate is closed or the wait
        would be long: its job goes back to the queue."""
        if poll and not self.counts_polls:
            # Not counted, but Segmind's Retry-After is for the key: polls wait it out too.
            while (closed_for := gate.closed_until - time.time()) > 0:
                await asyncio.sleep(closed_for)
            return 0.0
        began = time.monotonic()
        if poll:
            gate.polls_waiting += 1
        try:
            while True:
                now = time.time()
                if not poll and gate.closed(now):
                    return None
                wait = gate.wait(now)
                if not poll and gate.polls_waiting:
                    wait = max(wait, 0.05)
                if wait <= 0:
                    gate.take(now)
                    return now
                if not poll and time.monotonic() - began + wait > SLOT_WAIT_SECONDS:
                    return None
                await asyncio.sleep(min(wait, 1.0))
        finally:
            if poll:
                gate.polls_waiting -= 1

    def _throttle(
        self, gate: ratelimit.KeyGate, key: services.SegmindKey, retry_after: float | None
    ) -> float:
        """Segmind answered 429: close the key's gate. Returns the seconds it is closed."""
        self.counts["throttled"] += 1
        closed_for, capped = gate.on_429(time.time(), retry_after)
        if capped:
            logger.warning(
                "Segmind asked key %s to wait %.0f s; waiting %.0f s instead "
                "(SEGMIND_RETRY_AFTER_MAX_SECONDS)",
                key.key_id,
                retry_after,
                closed_for,
            )
        else:
            logger.info(
                "Segmind rate-limited key %s; its gate is closed for %.1f s (limit now %d)",
                key.key_id,
                closed_for,
                gate.limit,
            )
        return closed_for

    def _stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self._cancel_idle()
        # Wait for the submits and downloads already under way, and for the cancelled
        # coroutines to report, so that nothing is left half done.
        while self.pending:
            self._drain(TICK_SECONDS)
            self._renew_lease()

    def _claim_queued(self, now: float) -> int:
        admitted = self._admit(now)
        # Held back by the pace, not by an empty queue: not a reason to stop.
        self.held_back = admitted < 1
        room = min(
            admitted,
            settings.SEGMIND_MAX_IN_FLIGHT - len(self.pending),
            SUBMIT_WINDOW - len(self.submitting),
        )
        if room <= 0:
            return 0
        wall = time.time()
        # Keys whose budget is spent for now: their jobs stay queued, keeping their turn.
        full = {
            key_id for key_id, gate in self.gates.items() if self._room(key_id, gate, wall) <= 0
        }
        queued = Job.objects.segmind_queued()
        if full:
            if self.platform_key is not None and self.platform_key.key_id in full:
                queued = queued.exclude(own_key=False)
            spent = [t for t, k in self.tenant_keys.items() if k is not None and k.key_id in full]
            if spent:
                queued = queued.exclude(own_key=True, tenant_id__in=spent)
        # A plain read first: most ticks find nothing queued, and on SQLite every
        # transaction below takes the database's write lock. Turns: each workspace's
        # oldest queued job (per key) first, then each one's second, and so on; within a
        # turn, the workspace served longest ago first (a batch's next job is always
        # older than another shop's new one, so age alone would put the batch first).
        take = min(room, CLAIM_BATCH)
        # `turn` is segmind_in_turn's annotation, which the type checker does not see.
        candidates = list(
            queued.segmind_in_turn()
            .filter(Q(turn__lte=take))
            .values_list("pk", "tenant_id", "own_key", "turn", "created_at")[  # type: ignore[misc]
                :CLAIM_BATCH
            ]
        )
        served = self.served
        # A workspace never served (by this dispatcher or the ones before) goes first.
        candidates.sort(key=lambda r: (r[3], served.get((r[1], r[2]), NEVER_SERVED), r[4]))
        rows = [(pk, tenant_id, own) for pk, tenant_id, own, _, _ in candidates]
        if full and not rows and Job.objects.segmind_queued().exists():
            self.held_back = True  # waiting for a key's budget, not out of work
        if not rows:
            return 0
        self._load_tenant_keys({tenant_id for _, tenant_id, own in rows if own})
        waiting: list[uuid.UUID] = []
        budget: dict[str, int] = {}
        for job_id, tenant_id, own in rows:
            row_key = self._key(own, tenant_id)
            if row_key is not None:
                if row_key.key_id not in budget:
                    gate = self._gate(row_key)
                    budget[row_key.key_id] = self._room(row_key.key_id, gate, wall)
                if budget[row_key.key_id] <= 0:
                    self.held_back = True
                    continue
                budget[row_key.key_id] -= 1
            waiting.append(job_id)
            if len(waiting) >= take:
                break
        if not waiting:
            return 0
        claimed_at = timezone.now()
        with transaction.atomic():
            # Only while this run holds the lease, with a renewal's margin: a successor
            # settles the unsent jobs as the dead holder's once the lease runs out. The
            # row is locked until the commit, so a takeover waits for this claim.
            if not _lease_row_lock(self.holder, claimed_at):
                self.held_back = True
                self.renew_at = 0.0  # renew (or find the lease lost) on the next turn
                return 0
            # Locked until the commit (PostgreSQL), or the whole database is (SQLite's
            # IMMEDIATE transactions): the claim below takes exactly these rows.
            claimed = list(
                Job.objects.segmind_queued()
                .filter(pk__in=waiting)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("input_asset")
            )
            if not claimed:
                return 0
            self.tokens -= len(claimed)
            self._load_tenant_keys({job.tenant_id for job in claimed if job.own_key})
            # One read per claim, not per job: the open pauses, and which jobs are probes.
            # Locked, so that an operator's clear waits for this claim's commit and then
            # finds the jobs it sends to wait (PostgreSQL; SQLite runs one writer at a time).
            paused: set[str] = set()
            probe_of: dict[uuid.UUID, int] = {}
            pauses = ProviderPause.objects.open().select_for_update()
            for key_id, pause_id, probe_id in pauses.values_list("key_id", "pk", "probe_job_id"):
                paused.add(key_id)
                if probe_id is not None:
                    probe_of[probe_id] = pause_id
            wait: list[uuid.UUID] = []
            run: list[tuple[Job, services.SegmindKey | None]] = []
            for job in claimed:
                key = self._key(job.own_key, job.tenant_id)
                if key is not None and key.key_id in paused and job.pk not in probe_of:
                    wait.append(job.pk)
                else:
                    run.append((job, key))
            if wait:
                # The key is out of credit: the job waits, and keeps its held credits.
                Job.objects.filter(pk__in=wait, status=JobStatus.QUEUED).update(
                    status=JobStatus.WAITING_FOR_PROVIDER,
                    waiting_since=Coalesce(F("waiting_since"), Value(claimed_at)),
                )
            ids = [job.pk for job, _ in run]
            moved = Job.objects.filter(pk__in=ids, status=JobStatus.QUEUED).update(
                status=JobStatus.RUNNING, started_at=claimed_at, attempts=F("attempts") + 1
            )
            if moved != len(ids):  # pragma: no cover - the lock above rules it out
                taken = set(
                    Job.objects.filter(
                        pk__in=ids, status=JobStatus.RUNNING, started_at=claimed_at
                    ).values_list("pk", flat=True)
                )
                run = [(job, key) for job, key in run if job.pk in taken]
        for job, key in run:
            spec = catalog.get_model(job.model)
            try:
                if spec is None:
                    raise CodedError("model_unavailable", "This model is no longer offered.")
                if key is None:
                    raise CodedError(*(OWN_KEY_MISSING if job.own_key else PLATFORM_KEY_MISSING))
                services.job_params_check(job=job)
            except CodedError as e:
                self.counts["finished"] += services.job_fail(
                    job_id=job.pk, code=e.code, message=e.message
                )
                continue
            if job.pk in probe_of:
                self.probes[job.pk] = probe_of[job.pk]
            self.claims += 1
            self.served[(job.tenant_id, job.own_key)] = self.claims
            self.reserved[key.key_id] += 1
            self.pending.add(job.pk)
            self.submitting.add(job.pk)
            self._start(self._submit(job, spec, key), job_id=job.pk)
        return len(claimed)

    def _load_tenant_keys(self, tenant_ids: set[int]) -> None:
        """Decrypt the own keys of these workspaces, once per run (one query)."""
        missing = tenant_ids - self.tenant_keys.keys()
        if not missing:
            return
        tenants = Tenant.objects.filter(pk__in=missing).only(
            "pk", "segmind_key_encrypted", "segmind_key_last4", "segmind_plan", "segmind_rate_limit"
        )
        for tenant in tenants:
            self.tenant_keys[tenant.pk] = services.segmind_key_for(tenant=tenant)
            self.tenant_rates[tenant.pk] = ratelimit.Rate(tenant.segmind_per_minute, 60.0)
        for tenant_id in missing - self.tenant_keys.keys():
            self.tenant_keys[tenant_id] = None

    def _key(self, own_key: bool, tenant_id: int) -> services.SegmindKey | None:
        return self.tenant_keys.get(tenant_id) if own_key else self.platform_key

    def _client_for(self, key: services.SegmindKey) -> segmind.SegmindClient:
        client = self.clients.get(key.key_id)
        if client is None:
            client = self.clients[key.key_id] = _client(key.key)
        return client

    def _pick_up_in_flight(self) -> None:
        now = timezone.now()
        rows = list(
            Job.objects.segmind_in_flight()
            .exclude(pk__in=self.pending)
            .values_list("pk", "model", "provider_request", "submitted_at", "own_key", "tenant_id")
        )
        self._load_tenant_keys({row[5] for row in rows if row[4]})
        for job_id, model, stored, submitted_at, own_key, tenant_id in rows:
            # Polled with the key it was sent with: the same owner's key, resolved again.
            key = self._key(own_key, tenant_id)
            try:
                submission = segmind.Submission.from_dict(stored or {})
            except ValueError:
                self.counts["finished"] += services.job_fail(
                    job_id=job_id,
                    code="provider_bad_response",
                    message="The job's Segmind request was not recorded properly. Try again.",
                )
                continue
            if key is None:
                code, message = OWN_KEY_MISSING if own_key else PLATFORM_KEY_MISSING
                self.counts["finished"] += services.job_fail(
                    job_id=job_id, code=code, message=message
                )
                continue
            waited = (now - submitted_at).total_seconds() if submitted_at else 0.0
            self.pending.add(job_id)
            self._start(
                self._track(
                    job_id,
                    model,
                    submission,
                    key,
                    tenant_id=tenant_id,
                    waited=waited,
                    first_delay=0.0,
                ),
                job_id=job_id,
            )

    def _drain(self, timeout: float) -> None:
        self.loop.run_until_complete(self._wait_for_news(timeout))
        batch, self.events = self.events, []
        if not batch:
            return
        to_track: list[_Submitted] = []
        for event in batch:
            self.submitting.discard(event.job_id)
        # The results were written to storage on the I/O threads that fetched them (on
        # S3 that is network I/O, which must not hold the database's locks, nor this
        # thread while it holds the lease); a job that moved on meanwhile has its files
        # deleted again by job_succeed.
        stored = {e.job_id: e.stored for e in batch if isinstance(e, _Completed)}
        try:
            jobs = Job.objects.select_related("tenant").in_bulk(list(stored)) if stored else {}
            # One transaction per batch: on SQLite every commit is a disk sync. Its ended
            # jobs are counted in one UPDATE per engine once it commits.
            with transaction.atomic(), services.job_tallies_gathered():
                listening = account_services.webhook_endpoints_listening(
                    tenant_ids={job.tenant_id for job in jobs.values()}
                )
                for event in batch:
                    self._apply(event, to_track, jobs, listening, stored)
        except BaseException:
            # Rolled back: no row names the files stored for the batch. Deleted here,
            # outside the transaction; the jobs stay in flight and are polled again.
            services.asset_files_discard(assets=_stored_assets(batch))
            raise
        # A job deleted while its request ran: its results have no row to go to.
        if gone := [a for job_id, assets in stored.items() if job_id not in jobs for a in assets]:
            services.asset_files_discard(assets=gone)
        # Polling starts only once the request ids are committed.
        for event in to_track:
            first_delay = settings.SEGMIND_FIRST_POLL_SECONDS
            if self.counts_polls:
                # Polls cost budget: the first waits for most of the model's usual time.
                first_delay = max(first_delay, poll_interval(0.0, self.expected.get(event.model)))
            self._start(
                self._track(
                    event.job_id,
                    event.model,
                    event.submission,
                    event.key,
                    tenant_id=event.tenant_id,
                    waited=0.0,
                    first_delay=first_delay,
                ),
                job_id=event.job_id,
            )

    def _apply(
        self,
        event: _Event,
        to_track: list[_Submitted],
        jobs: dict[uuid.UUID, Job],
        listening: dict[int, list[WebhookEndpoint]],
        stored: dict[uuid.UUID, list[Asset]],
    ) -> None:
        # Whatever became of it, a probe is over once its submit has an answer.
        pause_id = self.probes.pop(event.job_id, None) if self.probes else None
        if isinstance(event, _Submitted):
            self.counts["submitted"] += 1
            if request_store(
                job_id=event.job_id, submission=event.submission, key_id=event.key.key_id
            ):
                to_track.append(event)
                if pause_id is not None:
                    # Segmind takes work with the key again: the jobs it held back resume.
                    services.provider_pause_clear(
                        pause_id=pause_id, by=None, reason="probe accepted"
                    )
                return
            # Only a job that left `running` meanwhile gets here (an operator's edit).
            logger.warning(
                "job %s moved on while Segmind request %s was submitted; not polling it",
                event.job_id,
                event.submission.request_id,
            )
        elif isinstance(event, _OutOfCredit):
            # Not finished: the job waits for the pause to clear, like every job for its key.
            services.provider_pause_open(
                job_id=event.job_id, key=event.key, provider_message=event.provider_message
            )
        elif isinstance(event, _Throttled):
            # Back in the queue, the attempt given back; `created_at` keeps its turn.
            Job.objects.filter(
                pk=event.job_id, status=JobStatus.RUNNING, provider_request_id=""
            ).update(
                status=JobStatus.QUEUED,
                started_at=None,
                attempts=Greatest(F("attempts") - 1, Value(0)),
            )
        elif isinstance(event, _Failed):
            self.counts["finished"] += services.job_fail(
                job_id=event.job_id, code=event.code, message=event.message
            )
        elif isinstance(event, _Completed) and (job := jobs.get(event.job_id)) is not None:
            self.counts["finished"] += services.job_succeed(
                job=job, stored=stored[job.pk], listening=listening[job.tenant_id]
            )
        self.pending.discard(event.job_id)

    # --- the event loop side ----------------------------------------------------------------

    async def _submit(self, job: Job, spec: catalog.ModelSpec, key: services.SegmindKey) -> None:
        gate = self._gate(key)
        reserved = True
        try:
            client = self._client_for(key)
            payload = await self.loop.run_in_executor(
                self.io, lambda: segmind_payload(job=job, spec=spec)
            )
            failures = 0
            while True:
                sent_at = await self._slot(gate, poll=False)
                if sent_at is None:
                    self._emit(_Throttled(job.pk))
                    return
                if reserved:
                    reserved = False
                    self.reserved[key.key_id] -= 1
                try:
                    submission = await client.submit(spec.slug, spec.kind, payload)
                except segmind.SegmindError as e:
                    gate.settle(sent_at, time.time())
                    if e.code == "provider_rate_limited":
                        # Not a failure: the job waits for the key's gate, in the queue.
                        self._throttle(gate, key, e.retry_after)
                        self._emit(_Throttled(job.pk))
                        return
                    gate.on_error()
                    failures += 1
                    if not e.retryable or failures >= settings.SEGMIND_SUBMIT_ATTEMPTS:
                        raise
                    await asyncio.sleep(
                        segmind.backoff_delay(failures - 1, retry_after=e.retry_after)
                    )
                    continue
                gate.settle(sent_at, time.time())
                gate.on_success()
                break
        except segmind.SegmindError as e:
            if e.code == "provider_insufficient_credits":
                self._emit(_OutOfCredit(job.pk, key, e.provider_message))
            else:
                self._emit(_Failed(job.pk, e.code, e.message))
        except OSError as e:
            self._emit(_Failed(job.pk, "missing_input", f"The input image is missing: {e}"))
        except Exception:
            logger.exception("submitting job %s to Segmind failed", job.pk)
            self._emit(_Failed(job.pk, "internal_error", services.INTERNAL_ERROR_MESSAGE))
        else:
            self._emit(_Submitted(job.pk, job.model, submission, key, job.tenant_id))
        finally:
            if reserved:
                self.reserved[key.key_id] -= 1

    async def _track(
        self,
        job_id: uuid.UUID,
        model: str,
        submission: segmind.Submission,
        key: services.SegmindKey,
        *,
        tenant_id: int,
        waited: float,
        first_delay: float,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.idle[job_id] = task
        started = time.monotonic() - waited
        try:
            poll = await self._poll_until_finished(
                job_id, model, submission, key, started, first_delay
            )
            if poll is None:
                return
            self._learn(model, poll, time.monotonic() - started)
            del self.idle[job_id]
            if (failure := poll.failure()) is not None:
                self._emit(_Failed(job_id, failure.code, failure.message))
                return
            # Fetched and stored on an I/O thread: a storage error fails this job's
            # tracking alone (below), and it stays in flight to be polled again.
            fetched = self.io.submit(
                contextvars.copy_context().run, _fetch_outputs, job_id, tenant_id, model, poll
            )
            try:
                event = await asyncio.wrap_future(fetched, loop=self.loop)
            except asyncio.CancelledError:
                # The thread goes on storing (a thread cannot be stopped); no event will
                # name what it stores, so its files are deleted once it is done.
                fetched.add_done_callback(_discard_unclaimed)
                raise
            self._emit(event)
        except asyncio.CancelledError:
            self._emit(_Released(job_id))
            raise
        except Exception:
            logger.exception("tracking Segmind request %s failed", submission.request_id)
            self._emit(_Released(job_id))
        finally:
            self.idle.pop(job_id, None)

    def _learn(self, model: str, poll: segmind.Poll, waited: float) -> None:
        # Segmind's own inference time leaves out its queue: a low guess, which is the
        # safe side. Without it, what we saw, less the polling slack.
        took = poll.inference_time or waited * 0.8
        if poll.state == segmind.COMPLETED and took > 0:
            before = self.expected.get(model)
            self.expected[model] = took if before is None else 0.7 * before + 0.3 * took

    async def _poll_until_finished(
        self,
        job_id: uuid.UUID,
        model: str,
        submission: segmind.Submission,
        key: services.SegmindKey,
        started: float,
        delay: float,
    ) -> segmind.Poll | None:
        """The request's last poll (COMPLETED or FAILED), or None once a failure is sent."""
        client = self._client_for(key)
        gate = self._gate(key)
        errors = 0
        while True:
            due = self.loop.time() + delay
            await asyncio.sleep(delay)
            sent_at = await self._slot(gate, poll=True)
            self.counts["polled"] += 1
            try:
                try:
                    poll = await client.status(submission)
                finally:
                    if sent_at:
                        gate.settle(sent_at, time.time())
                # From when the poll was due to its answer: a few milliseconds when the
                # dispatcher keeps up; more when its loop or its connections are saturated.
                self.lag = 0.9 * self.lag + 0.1 * max(0.0, self.loop.time() - due)
                if poll.state == segmind.COMPLETED and not poll.outputs and submission.kind == "v2":
                    sent_at = await self._slot(gate, poll=True)
                    try:
                        poll = await client.result(submission)
                    finally:
                        if sent_at:
                            gate.settle(sent_at, time.time())
                if self.counts_polls:
                    gate.on_success()
            except segmind.SegmindError as e:
                if e.code == "provider_rate_limited":
                    # Not a polling error: the key's gate closes and the poll waits it out.
                    if not self.counts_polls and not self.warned_poll_429:
                        self.warned_poll_429 = True
                        logger.warning(
                            "Segmind refused a status poll with 429: if it counts polls "
                            "against the limit, set SEGMIND_RATE_LIMIT_COUNTS_POLLS"
                        )
                    closed_for = self._throttle(gate, key, e.retry_after)
                    delay = max(closed_for, settings.SEGMIND_POLL_INTERVAL_SECONDS)
                    continue
                # A garbled status answer is asked again: the request itself is still fine.
                transient = e.retryable or e.code == "provider_bad_response"
                errors += 1
                if not transient or errors >= settings.SEGMIND_POLL_MAX_ERRORS:
                    self._emit(_Failed(job_id, e.code, e.message))
                    return None
                delay = segmind.backoff_delay(
                    errors - 1,
                    retry_after=e.retry_after,
                    base_delay=settings.SEGMIND_POLL_INTERVAL_SECONDS,
                )
                continue
            if poll.finished:
                return poll
            errors = 0
            delay = poll_interval(time.monotonic() - started, self.expected.get(model))

    async def _close(self) -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        for client in self.clients.values():
            await client.aclose()

    def _cancel_idle(self) -> None:
        for task in list(self.idle.values()):
            task.cancel()
