"""Jobs (one product photo through one model) and assets (the gallery's images)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Exists, F, OuterRef, Subquery, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from accounts.models import CreditEntry, CreditKind, Tenant

if TYPE_CHECKING:
    from jobs.catalog import Engine, ModelSpec


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    # Segmind's account for the job's key is out of credit (406): dispatch is paused and
    # the job waits for the pause to clear, or fails with a refund after a limit.
    WAITING_FOR_PROVIDER = "waiting_for_provider", "Waiting for provider"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
# The states a job passes through before it ends: few jobs are in them at any time, so
# counting them live is cheap (with `Job`'s partial index on them).
LIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_FOR_PROVIDER)

# Local-engine jobs a worker has started (whatever became of them since), and those
# running now.
LOCAL_STARTED = models.Q(started_at__isnull=False) & ~models.Q(engine="segmind")
LOCAL_RUNNING = models.Q(status=JobStatus.RUNNING) & ~models.Q(engine="segmind")

# Upper bounds (seconds) of the submit-to-stored histogram (`JobTally`): a local job takes
# about a second, a Segmind one from seconds to minutes, and a job held by a pause or the
# rate gate up to hours. A bound changed here needs `JobTally`'s `le_*` fields changed too.
LATENCY_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600)

# How long a job on the local engine usually takes (it composes; nothing is generated).
LOCAL_TYPICAL_SECONDS = 1.0


def _rerun_in_batch() -> Exists:
    # Whether the job (the outer row) has a rerun in its own batch.
    return Exists(Job.objects.filter(rerun_of=OuterRef("pk"), batch_id=OuterRef("batch_id")))


class JobQuerySet(models.QuerySet["Job"]):
    def for_tenant(self, tenant: Tenant) -> JobQuerySet:
        return self.filter(tenant=tenant)

    def filtered(self, **filters: Any) -> JobQuerySet:
        """Jobs that pass the gallery's filters (see `job_filter`)."""
        return self.filter(job_filter(**filters))

    def search(self, q: str) -> JobQuerySet:
        """Jobs matching `q` (see `job_search`)."""
        return self.filter(job_search("", q))

    def active(self) -> JobQuerySet:
        return self.filter(
            status__in=[JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_FOR_PROVIDER]
        )

    def status_counts(self) -> dict[str, int]:
        """How many jobs there are of each status (every status, 0 for none), in one query."""
        rows = self.order_by().values_list("status").annotate(n=Count("pk"))
        counts = dict.fromkeys(JobStatus.values, 0)
        counts.update(dict(rows))
        return counts

    def with_retried(self) -> JobQuerySet:
        """Each job with `retried`: whether it has a rerun in its batch (a batch's "retry
        failed jobs" skips those, so pressing it twice retries each job once)."""
        return self.annotate(retried=_rerun_in_batch())

    def retryable(self) -> JobQuerySet:
        """Failed jobs with no rerun in their batch yet: what "retry failed jobs" runs
        again (see `Job.is_retryable`)."""
        return self.filter(status=JobStatus.FAILED).exclude(_rerun_in_batch())

    def waiting_for(self, pause: ProviderPause) -> JobQuerySet:
        """The jobs held back by `pause`: those of the key's owner, the platform's or one
        workspace's own. Their key is looked at again when they are claimed, so a job that
        another pause holds back just waits again."""
        return self.filter(status=JobStatus.WAITING_FOR_PROVIDER).sent_with_key_of(pause.tenant_id)

    def sent_with_key_of(self, owner_id: int | None) -> JobQuerySet:
        """Segmind jobs sent with one key: the platform's (None) or workspace `owner_id`'s own."""
        if owner_id is None:
            return self.filter(own_key=False)
        return self.filter(own_key=True, tenant_id=owner_id)

    def segmind_queued(self) -> JobQuerySet:
        """Segmind jobs waiting for the dispatcher to claim and submit them."""
        return self.filter(status=JobStatus.QUEUED, engine="segmind")

    def segmind_in_turn(self) -> JobQuerySet:
        """Queued Segmind jobs in the order the dispatcher claims them: in turns across
        the workspaces (per key: a workspace's own key, or the platform's), each one's
        oldest job first, then each one's second, and so on; `turn` is the job's rank
        within its workspace and key."""
        return (
            self.segmind_queued()
            .annotate(
                turn=models.Window(
                    RowNumber(),
                    partition_by=[models.F("tenant_id"), models.F("own_key")],
                    order_by=[models.F("created_at").asc(), models.F("id").asc()],
                )
            )
            .order_by("turn", "created_at", "id")
        )

    def resubmitted_after_crash(self, *, since: datetime | None = None) -> JobQuerySet:
        """Jobs with a Segmind submission a crash cut off (Segmind may have billed it),
        the last one found since `since` if given."""
        jobs = self.filter(crash_resubmits__gt=0)
        return jobs.filter(resubmitted_after_crash_at__gte=since) if since else jobs

    def segmind_unsent(self) -> JobQuerySet:
        """Segmind jobs claimed by the dispatcher and not yet given a request id: being
        submitted by the lease's holder, or left so by a holder that died."""
        return self.filter(status=JobStatus.RUNNING, engine="segmind", provider_request_id="")

    def segmind_in_flight(self) -> JobQuerySet:
        """Jobs whose Segmind request is submitted and not finished yet."""
        return self.filter(status=JobStatus.RUNNING).exclude(provider_request_id="")

    def local_queued(self) -> JobQuerySet:
        """Local-engine jobs waiting for a worker."""
        return self.filter(status=JobStatus.QUEUED).exclude(engine="segmind")

    def local_running_of(self, tenant_id: int | OuterRef) -> JobQuerySet:
        """A workspace's local jobs running now (read through job_local_running_idx)."""
        return self.filter(LOCAL_RUNNING, models.Q(tenant_id=tenant_id))

    def local_last_start_of(
        self, tenant_id: int | OuterRef
    ) -> models.QuerySet[Job, datetime | None]:
        """When a workspace's last local job started, as a one-value query (read through
        job_local_started_idx): when it was last served by the shared workers."""
        return (
            self.filter(LOCAL_STARTED, models.Q(tenant_id=tenant_id))
            .order_by("-started_at")
            .values_list("started_at", flat=True)[:1]
        )

    def local_in_turn(self) -> JobQuerySet:
        """Queued local jobs, the one whose turn it is first: the workspace with the fewest
        local jobs running now, then each workspace's oldest job before its next ones
        (its rank among its own queued jobs), then the workspace served longest ago
        (`tenant_served`: its last local start, none first), then the oldest. So
        workspaces take turns on the shared workers, and within one workspace jobs go
        oldest first."""
        running = (
            Job.objects.local_running_of(OuterRef("tenant_id"))
            .order_by()
            .values("tenant_id")
            .annotate(n=Count("pk"))
            .values("n")
        )
        # When the workers free up together, every workspace has nothing running: without
        # the last start, the oldest job would win again and a batch would take a third
        # turn ahead of a shop still waiting for its first.
        served = Job.objects.local_last_start_of(OuterRef("tenant_id"))
        return (
            self.local_queued()
            .annotate(
                tenant_running=Coalesce(Subquery(running), Value(0)),
                tenant_rank=Window(
                    RowNumber(),
                    partition_by=[F("tenant_id")],
                    order_by=[F("created_at").asc(), F("id").asc()],
                ),
                tenant_served=Subquery(served),
            )
            .order_by(
                "tenant_running",
                "tenant_rank",
                F("tenant_served").asc(nulls_first=True),
                "created_at",
                "id",
            )
        )


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    model = models.CharField(max_length=100, help_text="Segmind model or workflow slug.")
    engine = models.CharField(max_length=20, default="local")
    params = models.JSONField(default=dict, blank=True)
    preset = models.ForeignKey(
        "Preset", models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    source_url = models.CharField(max_length=2000, blank=True)
    # Where this job's job.succeeded / job.failed also go (besides the workspace's
    # endpoints), signed with the workspace's webhook secret; checked like any fetch URL.
    webhook_url = models.CharField(max_length=2000, blank=True)
    # The local engine's backdrop for a scene, chosen when the job is made (see
    # `scenes.backdrop_choose`); blank for Segmind jobs and packshots.
    backdrop = models.CharField(max_length=40, blank=True)
    # The credits held for the job when it was submitted (0: free, nothing to settle).
    price = models.PositiveIntegerField(default=0)
    # Run with the workspace's own Segmind key (charged the platform fee, not the price).
    own_key = models.BooleanField(default=False)
    waiting_since = models.DateTimeField(null=True, blank=True)
    input_asset = models.ForeignKey(
        "Asset", models.SET_NULL, null=True, blank=True, related_name="+"
    )
    batch = models.ForeignKey("Batch", models.SET_NULL, null=True, blank=True, related_name="jobs")
    # The job this one runs again (`job_rerun`): a batch's "retry failed jobs" skips the
    # failed jobs that already have a rerun in the batch, so pressing it twice is harmless.
    rerun_of = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="reruns"
    )
    # The shop's own product code, given with the photo (a CSV's `sku` column); the
    # gallery filters and searches on it.
    sku = models.CharField(max_length=100, blank=True)
    # No seed was given, so one was drawn: a rerun draws another instead of repeating it.
    seed_drawn = models.BooleanField(default=False)
    status = models.CharField(
        max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    # Segmind's request, committed before anything waits on it: a task that finds it
    # resumes polling and never submits again.
    provider_request_id = models.CharField(max_length=100, blank=True, db_index=True)
    provider_request = models.JSONField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=60, blank=True)
    error_message = models.TextField(blank=True)
    # What the shop should know about a finished job's result (a packshot enlarged so
    # much it may look soft); blank when there is nothing to say.
    notice = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Submissions to Segmind whose answer a crash lost: Segmind has no idempotency keys,
    # so each may have been accepted (and billed) before the job was sent again. For
    # operators to reconcile with Segmind's request log; `resubmitted_after_crash_at` is
    # when the last one was found.
    crash_resubmits = models.PositiveSmallIntegerField(default=0)
    resubmitted_after_crash_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant", "-created_at"]),
            models.Index(fields=["tenant", "sku"]),
            # /metrics counts the unfinished jobs by state and engine at every scrape: the
            # index holds only them, so the count reads a few entries, however many jobs
            # ever ended.
            models.Index(
                fields=["status", "engine"],
                name="job_live_status_engine_idx",
                condition=models.Q(status__in=LIVE_STATUSES),
            ),
            # Each claim of a local job reads every queued workspace's running local jobs
            # and last local start (`JobQuerySet.local_in_turn`): a few entries each,
            # however many jobs it ran.
            models.Index(fields=["tenant"], name="job_local_running_idx", condition=LOCAL_RUNNING),
            models.Index(
                fields=["tenant", "-started_at"],
                name="job_local_started_idx",
                condition=LOCAL_STARTED,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} job {self.id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def spec(self) -> ModelSpec | None:
        from jobs.catalog import get_model

        return get_model(self.model)

    @property
    def model_title(self) -> str:
        spec = self.spec
        return spec.title if spec else self.model

    @property
    def source_label(self) -> str:
        """The name of the photo the job was made from: its file's name, else the last
        part of its URL's path ("" when neither says anything)."""
        if self.input_asset_id is not None and self.input_asset and self.input_asset.original_name:
            return self.input_asset.original_name
        path = urlsplit(self.source_url).path if self.source_url else ""
        return unquote(path.rstrip("/").rsplit("/", 1)[-1])

    @property
    def label(self) -> str:
        """How the shop tells this job's photo from the others: its SKU, else its photo's
        name, else its model's title."""
        return self.sku or self.source_label or self.model_title

    @property
    def price_note(self) -> str:
        """What the job costs the shop, in words that follow its status."""
        if not self.price:
            return "Free"
        credits = f"{self.price} credit{'s' if self.price != 1 else ''}"
        if self.status == JobStatus.SUCCEEDED:
            return f"{credits} charged"
        if self.status in (JobStatus.FAILED, JobStatus.CANCELED):
            return f"{credits} given back: not charged"
        return f"{credits} reserved until it finishes"

    @property
    def status_label(self) -> str:
        """The status as the portal's badge says it."""
        if self.status == JobStatus.WAITING_FOR_PROVIDER:
            return "Waiting for Segmind"
        return self.get_status_display()

    @property
    def typical_seconds(self) -> float | None:
        """How long a job like this one usually takes, if known: the local engine is
        quick; Segmind's time is the catalog's, per model."""
        if self.engine != "segmind":
            return LOCAL_TYPICAL_SECONDS
        spec = self.spec
        return spec.typical_seconds if spec else None

    def elapsed_seconds(self, now: datetime | None = None) -> float:
        """Seconds since the job was submitted, until it finished (or `now`)."""
        end = self.completed_at or now or timezone.now()
        return max(0.0, (end - self.created_at).total_seconds())

    def params_chosen(self) -> dict[str, Any]:
        """The parameters the shop chose: those that differ from what the job's preset
        and the model's defaults give, less the photo and a seed that was drawn (a new job
        from this one draws its own)."""
        spec = self.spec
        if spec is None:
            return {}
        base = {**spec.defaults(), **(self.preset.params if self.preset else {})}
        return {
            name: value
            for name, value in self.params.items()
            if name in spec.params
            and name != spec.image_param
            and not (spec.params[name].is_seed and self.seed_drawn)
            and base.get(name) != value
        }

    @property
    def is_retryable(self) -> bool:
        """Failed, with no rerun in its batch yet (`JobQuerySet.retryable`); the job must
        come from `with_retried()`."""
        # `retried` is an annotation, which the model does not declare.
        return self.status == JobStatus.FAILED and not self.retried  # type: ignore[attr-defined]

    def refund_entry(self) -> CreditEntry | None:
        """The refund an operator gave for this job, if any. A free job held nothing, so
        it has none (and nothing is queried)."""
        if not self.price:
            return None
        return self.credit_entries.filter(kind=CreditKind.REFUND).first()

    @property
    def is_waiting_for_provider(self) -> bool:
        return self.status == JobStatus.WAITING_FOR_PROVIDER

    @property
    def waiting_gives_up_at(self) -> datetime | None:
        """When a job waiting for Segmind fails (with its credits given back) if it has
        not been sent by then."""
        if not self.is_waiting_for_provider or self.waiting_since is None:
            return None
        return self.waiting_since + timedelta(seconds=settings.SEGMIND_WAIT_LIMIT_SECONDS)

    @property
    def waiting_message(self) -> str:
        """Why a waiting job waits, for the shop (reads the tenant for an own key)."""
        if not self.is_waiting_for_provider:
            return ""
        last4 = self.tenant.segmind_key_last4 if self.own_key else ""
        return provider_waiting_message(own_key=self.own_key, last4=last4)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.completed_at:
            return (self.completed_at - self.started_at).total_seconds()
        return None


class BatchQuerySet(models.QuerySet["Batch"]):
    def for_tenant(self, tenant: Tenant) -> BatchQuerySet:
        return self.filter(tenant=tenant)

    def with_progress(self) -> BatchQuerySet:
        """Each batch with its jobs counted by status (`total`, `queued`, ...), in the
        same query: lists show progress without a query per batch."""
        jobs = models.Count("jobs")
        counts = {
            status.value: models.Count("jobs", filter=models.Q(jobs__status=status))
            for status in JobStatus
        }
        return self.annotate(total=jobs, **counts)


class Batch(models.Model):
    """Jobs submitted together (one model, many product photos), followed as one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="batches")
    name = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Set once, by the first look that finds every job finished (`batch_complete_check`).
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return self.name or f"batch {self.id}"

    def elapsed_seconds(self, now: datetime | None = None) -> float:
        """Seconds since the batch was submitted, until its last job finished (or `now`)."""
        end = self.completed_at or now or timezone.now()
        return max(0.0, (end - self.created_at).total_seconds())

    def progress(self) -> dict[str, int]:
        """Its jobs counted by status, `done` (finished one way or another) and `percent`
        (of jobs done); from `with_progress` when annotated, else counted now."""
        statuses = [status.value for status in JobStatus]
        if hasattr(self, "total"):
            counts = {name: int(getattr(self, name)) for name in ["total", *statuses]}
        else:
            rows = self.jobs.values("status").annotate(n=models.Count("pk")).order_by()
            by_status = {row["status"]: row["n"] for row in rows}
            counts = {name: by_status.get(name, 0) for name in statuses}
            counts["total"] = sum(by_status.values())
        done = sum(counts[status] for status in TERMINAL_STATUSES)
        total = counts["total"]
        percent = done * 100 // total if total else 0
        return {**counts, "done": done, "percent": percent}

    @property
    def all_jobs_finished(self) -> bool:
        """Every job of it has finished (from `progress`), even before `completed_at` is set."""
        progress = self.progress()
        return progress["total"] > 0 and progress["done"] == progress["total"]

    def ended_at(self, jobs: Iterable[Job]) -> datetime | None:
        """When the last of `jobs` (its jobs, loaded) finished: the batch's own
        `completed_at` is set just after its last job's commit, so until then the batch
        ended when its last job did."""
        return max((job.completed_at for job in jobs if job.completed_at), default=None)


# The Segmind dispatcher's lease (a row of accounts' lease table): one dispatcher at a time holds
# it (see jobs/dispatcher/), and a dead holder's runs out this long after its last renewal.
DISPATCHER_LEASE = "segmind-dispatcher"
DISPATCHER_LEASE_SECONDS = 15.0


class SegmindKeyBudget(models.Model):
    """One Segmind key's pacing, carried from one dispatcher run to the next (see
    `jobs.engines.segmind.ratelimit.KeyGate`): written at the dispatcher's lease renewals,
    not per request.
    Named by the key's digest (`segmind_key_id`), never the key."""

    key_id = models.CharField(max_length=32, unique=True)
    # The workspace whose own key it is; None for the platform's key.
    tenant = models.ForeignKey(
        Tenant, models.CASCADE, null=True, blank=True, related_name="segmind_budgets"
    )
    # The configured budget: `limit` requests per `window_seconds` (0: unlimited).
    limit = models.PositiveIntegerField(default=0)
    window_seconds = models.FloatField(default=60.0)
    # What the dispatcher allows itself now: lowered by 429s, recovering slowly.
    adaptive_limit = models.FloatField(default=0.0)
    # A 429 closed the gate until then.
    closed_until = models.DateTimeField(null=True, blank=True)
    # The gate's history: send times within the window, 429 times within the hour.
    state = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "key_id"]

    def __str__(self) -> str:
        owner = f"{self.tenant}'s own key" if self.tenant_id else "the platform's key"
        return f"Segmind budget of {owner}"

    @property
    def owner(self) -> str:
        return f"{self.tenant}'s own key" if self.tenant_id else "the platform's key"


def latency_bucket_field(bound: int) -> str:
    """The `JobTally` field counting the jobs stored within `bound` seconds."""
    return f"le_{bound}"


class JobTally(models.Model):
    """Running totals of the jobs of one engine that ended, for /metrics: kept by the
    services that end a job (one `F()` update in the job's own transaction), so a scrape
    reads a row per engine instead of every job ever, and the totals only grow (deleting a
    workspace and its jobs takes nothing off them), as Prometheus' counters must."""

    engine = models.CharField(max_length=20, unique=True)
    succeeded = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    canceled = models.PositiveBigIntegerField(default=0)
    # The submit-to-stored histogram of the jobs that succeeded: how many, their seconds
    # added up, and per bound of LATENCY_BUCKETS how many took at most that (cumulative).
    latency_count = models.PositiveBigIntegerField(default=0)
    latency_sum = models.FloatField(default=0.0)
    le_1 = models.PositiveBigIntegerField(default=0)
    le_2 = models.PositiveBigIntegerField(default=0)
    le_5 = models.PositiveBigIntegerField(default=0)
    le_10 = models.PositiveBigIntegerField(default=0)
    le_20 = models.PositiveBigIntegerField(default=0)
    le_30 = models.PositiveBigIntegerField(default=0)
    le_60 = models.PositiveBigIntegerField(default=0)
    le_120 = models.PositiveBigIntegerField(default=0)
    le_300 = models.PositiveBigIntegerField(default=0)
    le_600 = models.PositiveBigIntegerField(default=0)
    le_1800 = models.PositiveBigIntegerField(default=0)
    le_3600 = models.PositiveBigIntegerField(default=0)
    le_21600 = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["engine"]

    def __str__(self) -> str:
        return f"Totals of the {self.engine} engine's jobs"

    def latency_buckets(self) -> list[tuple[float, int]]:
        """(bound in seconds, jobs stored within it), cumulative, as Prometheus wants."""
        return [(float(b), getattr(self, latency_bucket_field(b))) for b in LATENCY_BUCKETS]


class AssetKind(models.TextChoices):
    INPUT = "input", "Input"
    OUTPUT = "output", "Output"


def job_filter(
    prefix: str = "",
    *,
    model: str = "",
    preset_id: int | None = None,
    batch_id: uuid.UUID | None = None,
    sku: str = "",
    status: str = "",
    created_from: datetime | None = None,
    created_before: datetime | None = None,
) -> models.Q:
    """The gallery's filters on a job, as a Q on jobs (`prefix` "") or on rows that name
    their job (`prefix` "job__"); dates are on the job's creation, empty values ignored."""
    lookups: dict[str, Any] = {
        "model": model or None,
        "preset_id": preset_id,
        "batch_id": batch_id,
        "sku__iexact": sku or None,
        "status": status or None,
        "created_at__gte": created_from,
        "created_at__lt": created_before,
    }
    return models.Q(**{prefix + k: v for k, v in lookups.items() if v is not None})


def job_search(prefix: str, q: str) -> models.Q:
    """Jobs whose SKU, source URL, photo's file name, preset's name or model's title
    contain `q` (case-insensitive)."""
    from jobs.catalog import all_models

    q = q.strip()
    if not q:
        return models.Q()
    titled = [spec.slug for spec in all_models() if q.lower() in spec.title.lower()]
    match = (
        models.Q(**{prefix + "sku__icontains": q})
        | models.Q(**{prefix + "source_url__icontains": q})
        | models.Q(**{prefix + "input_asset__original_name__icontains": q})
        | models.Q(**{prefix + "preset__name__icontains": q})
    )
    if titled:
        match |= models.Q(**{prefix + "model__in": titled})
    return match


class AssetQuerySet(models.QuerySet["Asset"]):
    def for_tenant(self, tenant: Tenant) -> AssetQuerySet:
        return self.filter(tenant=tenant)

    def outputs(self) -> AssetQuerySet:
        return self.filter(kind=AssetKind.OUTPUT)

    def filtered(self, *, favourite: bool = False, **job_filters: Any) -> AssetQuerySet:
        """Assets whose job passes the gallery's filters (see `job_filter`), and only
        favourites if `favourite`."""
        assets = self.filter(job_filter("job__", **job_filters))
        return assets.filter(favourite=True) if favourite else assets

    def search(self, q: str) -> AssetQuerySet:
        """Assets whose job matches `q` (see `job_search`), or whose own file name does."""
        if not q.strip():
            return self
        return self.filter(job_search("job__", q) | models.Q(original_name__icontains=q.strip()))


def asset_upload_to(instance: Asset, filename: str) -> str:
    # Grouped by workspace; the UUID makes names unguessable and collision-free.
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"assets/{instance.tenant_id}/{instance.created_at:%Y/%m}/{instance.id}.{ext}"


def asset_thumbnail_upload_to(instance: Asset, filename: str) -> str:
    # A JPEG, or a WebP for an image with transparency (see `images.Thumbnail`).
    ext = "webp" if filename.endswith(".webp") else "jpg"
    return f"assets/{instance.tenant_id}/{instance.created_at:%Y/%m}/{instance.id}.thumb.{ext}"


class Asset(models.Model):
    """An image kept for good: a job's input or one of its outputs."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, models.CASCADE, related_name="assets")
    job = models.ForeignKey(Job, models.CASCADE, null=True, blank=True, related_name="assets")
    kind = models.CharField(max_length=10, choices=AssetKind.choices)
    file = models.FileField(upload_to=asset_upload_to, max_length=300)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10, help_text="JPEG, PNG or WEBP.")
    byte_size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    # A small JPEG made once, when the asset is stored: galleries never send full images.
    thumbnail = models.FileField(upload_to=asset_thumbnail_upload_to, max_length=300, blank=True)
    # Whether any pixel shows through (a cut-out on a transparent background): the portal
    # shows those on a checkerboard, and opaque images never. Learnt when the thumbnail is
    # made, from the decoded image; a JPEG never has it.
    has_transparency = models.BooleanField(default=False)
    favourite = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AssetQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.width}x{self.height} {self.format}"

    @property
    def mime_type(self) -> str:
        return {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(
            self.format, "application/octet-stream"
        )

    @property
    def extension(self) -> str:
        return {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}.get(self.format, "bin")

    @property
    def thumbnail_mime_type(self) -> str:
        return "image/webp" if self.thumbnail.name.endswith(".webp") else "image/jpeg"


class PresetQuerySet(models.QuerySet["Preset"]):
    def for_tenant(self, tenant: Tenant) -> PresetQuerySet:
        """The tenant's own presets."""
        return self.filter(tenant=tenant)

    def system(self) -> PresetQuerySet:
        return self.filter(tenant__isnull=True)

    def visible_to(self, tenant: Tenant) -> PresetQuerySet:
        """System presets and the tenant's own: what the tenant may pick."""
        return self.filter(models.Q(tenant__isnull=True) | models.Q(tenant=tenant))

    def for_model(self, slug: str) -> PresetQuerySet:
        return self.filter(model=slug)


class Preset(models.Model):
    """A named parameter set for one model: a system preset (no tenant) or a shop's own."""

    tenant = models.ForeignKey(
        Tenant, models.CASCADE, null=True, blank=True, related_name="presets"
    )
    model = models.CharField(max_length=100)
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    # Only the parameters the preset fixes; the rest come from the catalog's defaults.
    params = models.JSONField(default=dict, blank=True)
    # For the local engine, which composes instead of generating: the backdrop to use.
    backdrop = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PresetQuerySet.as_manager()

    class Meta:
        ordering = ["model", "tenant_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "slug"], name="unique_preset_slug_per_tenant"
            ),
            models.UniqueConstraint(
                fields=["slug"],
                condition=models.Q(tenant__isnull=True),
                name="unique_system_preset_slug",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model})"

    @property
    def is_system(self) -> bool:
        return self.tenant_id is None

    @property
    def model_title(self) -> str:
        spec = self.spec
        return spec.title if spec else self.model

    @property
    def spec(self) -> ModelSpec | None:
        from jobs.catalog import get_model

        return get_model(self.model)


class JobPriceQuerySet(models.QuerySet["JobPrice"]):
    def for_job(self, model: str, engine: str) -> JobPrice | None:
        """The row operators set, else the engine's default (None: free)."""
        return self.filter(model=model, engine=engine).first() or JobPrice.default_for(
            model, engine
        )

    def for_engine(self, engine: str) -> dict[str, JobPrice | None]:
        """Each catalog model's price on `engine` (rows, else the engine's default), in one
        query."""
        from jobs.catalog import all_models

        rows = {p.model: p for p in self.filter(engine=engine)}
        return {
            spec.slug: rows.get(spec.slug) or JobPrice.default_for(spec.slug, engine)
            for spec in all_models()
        }


class JobPrice(models.Model):
    """What a job of ``model`` on ``engine`` costs in credits; operators set it in the
    admin. With no row, a local job is free and a Segmind job costs SEGMIND_DEFAULT_PRICE
    (`default_for`): a new deployment never gives paid Segmind calls away by accident."""

    model = models.CharField(max_length=100)
    engine = models.CharField(
        max_length=20, default="segmind", choices=[("segmind", "Segmind"), ("local", "Local")]
    )
    credits = models.PositiveIntegerField(default=0)
    # For models sized by megapixel: added for each started megapixel of output.
    credits_per_megapixel = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = JobPriceQuerySet.as_manager()

    class Meta:
        ordering = ["engine", "model"]
        constraints = [
            models.UniqueConstraint(fields=["model", "engine"], name="one_price_per_model_engine")
        ]

    def __str__(self) -> str:
        return f"{self.model} on {self.engine}: {self.credits} credits"

    @classmethod
    def default_for(cls, model: str, engine: str) -> JobPrice | None:
        """The unsaved price of a model with no row: SEGMIND_DEFAULT_PRICE on Segmind,
        since each such job costs the platform money; None (free) on the local engine."""
        if engine != "segmind":
            return None
        return cls(model=model, engine=engine, credits=settings.SEGMIND_DEFAULT_PRICE)

    @property
    def is_default(self) -> bool:
        """No operator set this price: it is the engine's default."""
        return self._state.adding

    def clean(self) -> None:
        """A price is for a model the catalog has, on an engine that runs it: a price under
        any other name would be saved and then price nothing."""
        from jobs.catalog import all_models, get_model

        spec = get_model(self.model)
        if spec is None:
            known = ", ".join(m.slug for m in all_models())
            raise ValidationError(
                {
                    "model": f"model: the catalog has no model called “{self.model}”; "
                    f"choose one of {known}."
                }
            )
        engine = cast("Engine", self.engine)
        if engine in ("local", "segmind") and not spec.runs_on(engine):
            raise ValidationError(
                {
                    "engine": f"engine: the {self.get_engine_display()} engine does not run "
                    f"{spec.title}, so this price would never apply."
                }
            )

    @property
    def label(self) -> str:
        """The price as the model cards show it."""
        if not self.credits and not self.credits_per_megapixel:
            return "Free"
        base = f"{self.credits} credit{'s' if self.credits != 1 else ''}"
        if self.credits_per_megapixel:
            return f"{base} + {self.credits_per_megapixel} per megapixel"
        return base

    def for_params(self, params: Mapping[str, Any]) -> int:
        """The price of a job with these resolved parameters."""
        megapixel = params.get("megapixel")
        if megapixel is None or not self.credits_per_megapixel:
            return self.credits
        return self.credits + self.credits_per_megapixel * math.ceil(float(megapixel))


# What a shop is told when Segmind's account behind the key is out of credit (406). The
# platform's key is ProductStudio's problem: the shop is told it was not charged and that
# we know; a workspace's own key is the shop's to top up.


def _duration_words(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"{hours} hours"


def _own_account(last4: str) -> str:
    return f"Your own Segmind account (key ending {last4})" if last4 else "Your own Segmind account"


def provider_waiting_message(*, own_key: bool, last4: str = "") -> str:
    """A job waits: sending it is paused while Segmind's account is out of credit."""
    limit = _duration_words(settings.SEGMIND_WAIT_LIMIT_SECONDS)
    if own_key:
        return (
            f"{_own_account(last4)} is out of credit. This job waits and is sent once the "
            "account has credit again: top up your Segmind account. Nothing has been "
            "charged: you can cancel it to get its credits back now, and if it cannot be "
            f"sent within {limit}, it fails and no ProductStudio credit is taken."
        )
    return (
        "Segmind, the service that makes these images, is out of credit on ProductStudio's "
        "side. This job waits and is sent as soon as Segmind takes work again; we have been "
        "alerted. Nothing has been charged: you can cancel it to get its credits back now, "
        f"and if it cannot be sent within {limit}, it fails and no credit is taken."
    )


def provider_gave_up_message(*, own_key: bool, last4: str = "", waited_seconds: float) -> str:
    """A waiting job reached the wait limit and failed."""
    waited = _duration_words(waited_seconds)
    if own_key:
        return (
            f"{_own_account(last4)} stayed out of credit, and this job waited {waited} "
            "without being sent, so it was given up. Top up your Segmind account, then try "
            "again. No ProductStudio credit was taken."
        )
    return (
        "Segmind, the service that makes these images, stayed out of credit on "
        f"ProductStudio's side, and this job waited {waited} without being sent, so it was "
        "given up. No credit was taken: this job cost you nothing. Please try again later."
    )


def provider_rate_gave_up_message(*, waited_seconds: float) -> str:
    """A queued job reached the rate-limit wait limit (SEGMIND_RATE_WAIT_LIMIT_SECONDS)."""
    waited = _duration_words(waited_seconds)
    return (
        "Segmind, the service that makes these images, limits how many requests each key "
        f"may send a minute, and this job waited {waited} for its turn without being sent, "
        "so it was given up. No credit was taken: this job cost you nothing. Please try "
        "again later."
    )


class ProviderPauseQuerySet(models.QuerySet["ProviderPause"]):
    def open(self) -> ProviderPauseQuerySet:
        return self.filter(cleared_at__isnull=True)


class ProviderPause(models.Model):
    """A circuit breaker on one Segmind key: opened when Segmind answers 406 (the account
    behind the key is out of credit). While open, jobs for that key wait instead of being
    sent; it closes when an operator clears it or a probe is accepted."""

    # `segmind_key_id(key)`: a digest naming the key without revealing it.
    key_id = models.CharField(max_length=32)
    # The workspace whose own key it is; None for the platform's key.
    tenant = models.ForeignKey(
        Tenant, models.CASCADE, null=True, blank=True, related_name="provider_pauses"
    )
    message = models.TextField(blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    # No job is sent with the key before this; then one job goes as a probe.
    paused_until = models.DateTimeField()
    probe_job = models.ForeignKey(Job, models.SET_NULL, null=True, blank=True, related_name="+")
    occurrences = models.PositiveIntegerField(default=1)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cleared_reason = models.CharField(max_length=200, blank=True)

    objects = ProviderPauseQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key_id"],
                condition=models.Q(cleared_at__isnull=True),
                name="one_open_pause_per_key",
            )
        ]

    def __str__(self) -> str:
        owner = self.tenant or "platform key"
        state = "open" if self.cleared_at is None else "cleared"
        return f"Segmind pause for {owner} ({state})"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

    @property
    def owner(self) -> str:
        """Whose key it is, for operators (never the key itself)."""
        return f"{self.tenant}'s own key" if self.tenant_id else "the platform's key"


class ProviderIncidentQuerySet(models.QuerySet["ProviderIncident"]):
    def for_tenant(self, tenant: Tenant) -> ProviderIncidentQuerySet:
        return self.filter(tenant=tenant)


class ProviderIncident(models.Model):
    """One occurrence of a provider-side problem a shop and an operator must see (a 406
    from Segmind): which job, which key, what Segmind said."""

    pause = models.ForeignKey(
        ProviderPause, models.SET_NULL, null=True, blank=True, related_name="incidents"
    )
    tenant = models.ForeignKey(
        Tenant, models.CASCADE, null=True, blank=True, related_name="provider_incidents"
    )
    job = models.ForeignKey(Job, models.SET_NULL, null=True, blank=True, related_name="+")
    key_id = models.CharField(max_length=32)
    own_key = models.BooleanField(default=False)
    code = models.CharField(max_length=60)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ProviderIncidentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.code} at {self.created_at:%Y-%m-%d %H:%M}"
