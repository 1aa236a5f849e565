"""The one representation of an asset, a job and a batch: the API's responses and the
webhook events' `data` (`job_event_data`, `batch_event_data`) come from the same
serializers, so a client reads a job the same way whichever way it arrives.

Without a request (a webhook), URLs are made absolute from SITE_URL.
"""

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request

from jobs.models import Asset, Batch, Job, JobStatus
from jobs.selectors import downloads
from jobs.selectors import queue as queueing


def _absolute(request: Request | None, urls: dict[str, str]) -> dict[str, str]:
    if request is None:  # a webhook: absolute URLs from the site's public address
        return {name: settings.SITE_URL + url for name, url in urls.items()}
    return {name: request.build_absolute_uri(url) for name, url in urls.items()}


class AssetSerializer(serializers.ModelSerializer[Asset]):
    """An image of the workspace: a job's input or one of its outputs, with a link to
    download it that needs no API key and expires."""

    url = serializers.SerializerMethodField(
        help_text=(
            "Download link, no API key needed; valid until `expires_at`. A path on this "
            "site, or, where the studio keeps its images on S3, the store's own presigned "
            "URL (the store answers 403 once it has expired)."
        )
    )
    expires_at = serializers.SerializerMethodField(help_text="When `url` stops working.")

    class Meta:
        model = Asset
        fields = [
            "id",
            "kind",
            "job",
            "width",
            "height",
            "format",
            "byte_size",
            "sha256",
            "created_at",
            "url",
            "expires_at",
        ]
        extra_kwargs = {
            "id": {"help_text": "The asset's id."},
            "kind": {"help_text": "`input` (the product photo) or `output` (a result)."},
            "job": {"help_text": "The job it belongs to (an input shared by reruns: the first)."},
            "width": {"help_text": "Width in pixels."},
            "height": {"help_text": "Height in pixels."},
            "format": {"help_text": "JPEG, PNG or WEBP."},
            "byte_size": {"help_text": "Size of the file in bytes."},
            "sha256": {"help_text": "SHA-256 of the file, hex."},
            "created_at": {"help_text": "When it was stored."},
        }

    def _signed(self, asset: Asset) -> downloads.AssetUrl:
        # One signature per asset and response, shared by `url` and `expires_at`.
        cache: dict[Any, downloads.AssetUrl] = self.__dict__.setdefault("_signed_urls", {})
        if asset.pk not in cache:
            cache[asset.pk] = downloads.asset_download_url(asset=asset)
        return cache[asset.pk]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, asset: Asset) -> str:
        url = self._signed(asset).url
        request = self.context.get("request")
        if request is not None:
            return request.build_absolute_uri(url)
        # A webhook: this site's public address, unless the storage signed its own URL.
        return url if "://" in url else settings.SITE_URL + url

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_expires_at(self, asset: Asset) -> str:
        return str(serializers.DateTimeField().to_representation(self._signed(asset).expires_at))


JobQueueSerializer = inline_serializer(
    "JobQueuePlace",
    {
        "position": serializers.IntegerField(
            help_text="Its place in line: 1 is next. Segmind jobs queue per Segmind key (the "
            "platform's, or the workspace's own), in turns across workspaces; local jobs "
            "queue for the shared workers, in turns too."
        ),
        "ahead": serializers.IntegerField(help_text="Jobs that go before it."),
        "estimated_start_at": serializers.DateTimeField(
            help_text="When it should start: from its Segmind key's requests-a-minute budget "
            "(and any wait Segmind asked for after a 429), or from the local engine's "
            "recent times. An estimate: it moves as the line does."
        ),
    },
    allow_null=True,
)


class JobSerializer(serializers.ModelSerializer[Job]):
    """A job: one product photo made into an image by a model, its credits held until it
    finishes (charged if it succeeds, given back if not)."""

    error = serializers.SerializerMethodField(
        help_text="Why it failed: `code` (listed in the API's description) and `message`, "
        "for a person; null unless `failed`."
    )
    waiting = serializers.SerializerMethodField()
    queue = serializers.SerializerMethodField(
        help_text="A `queued` job's place in line and estimated start; null otherwise, and "
        "null in lists (GET /api/v1/jobs/<id> shows it)."
    )
    outputs = serializers.SerializerMethodField(
        help_text="The images it made, once `succeeded`; empty before."
    )
    urls = serializers.SerializerMethodField(
        help_text="`self`, `cancel` (POST) and `rerun` (POST): this job's routes."
    )
    batch = serializers.UUIDField(
        source="batch_id", read_only=True, allow_null=True, help_text="Its batch, if any."
    )
    notice = serializers.CharField(
        read_only=True,
        help_text="What to know about a `succeeded` job's result, for a person; empty when "
        "there is nothing to say. Today: a local packshot whose product was enlarged more "
        "than 2x to fill its 2000 x 2000 canvas, so it may look soft.",
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "model",
            "status",
            "params",
            "price",
            "created_at",
            "started_at",
            "completed_at",
            "error",
            "waiting",
            "queue",
            "outputs",
            "urls",
            "batch",
            "notice",
        ]
        extra_kwargs = {
            "id": {"help_text": "The job's id."},
            "model": {"help_text": "The model's slug."},
            "status": {
                "help_text": "`queued`, `running`, `waiting_for_provider` (Segmind is out of "
                "credit: see `waiting`; it can still be canceled, its credits back), then "
                "`succeeded`, `failed` or `canceled`."
            },
            "params": {
                "help_text": "The parameters it runs with: the model's defaults, the preset's "
                "and the request's, checked (a seed of -1 is drawn)."
            },
            "price": {"help_text": "Credits held for it; charged only if it succeeds."},
            "created_at": {"help_text": "When it was created."},
            "started_at": {"help_text": "When it started running; null until then."},
            "completed_at": {"help_text": "When it finished; null until then."},
        }

    def get_error(self, job: Job) -> dict[str, str] | None:
        if not job.error_code:
            return None
        return {"code": job.error_code, "message": job.error_message}

    def get_waiting(self, job: Job) -> dict[str, Any] | None:
        """Why a `waiting_for_provider` job waits, since when, and when it gives up (then
        it fails with `provider_insufficient_credits` and nothing is charged)."""
        if not job.is_waiting_for_provider:
            return None
        # Formatted like the other times of the job.
        when = serializers.DateTimeField()
        gives_up_at = job.waiting_gives_up_at
        return {
            "code": "provider_insufficient_credits",
            "message": job.waiting_message,
            "since": when.to_representation(job.waiting_since) if job.waiting_since else None,
            "gives_up_at": when.to_representation(gives_up_at) if gives_up_at else None,
        }

    @extend_schema_field(JobQueueSerializer)
    def get_queue(self, job: Job) -> dict[str, Any] | None:
        # A few queries per job: shown for one job at a time, never for a list's rows.
        if job.status != JobStatus.QUEUED or isinstance(self.parent, serializers.ListSerializer):
            return None
        place = queueing.job_queue_place(job=job)
        if place is None:
            return None
        return {
            "position": place.position,
            "ahead": place.ahead,
            "estimated_start_at": serializers.DateTimeField().to_representation(
                place.estimated_start_at
            ),
        }

    def get_urls(self, job: Job) -> dict[str, str]:
        request = self.context.get("request")
        urls = {
            "self": reverse("api_job", args=[job.pk]),
            "cancel": reverse("api_job_cancel", args=[job.pk]),
            "rerun": reverse("api_job_rerun", args=[job.pk]),
        }
        if request is None:  # a webhook: absolute URLs from the site's public address
            return {name: settings.SITE_URL + url for name, url in urls.items()}
        return {name: request.build_absolute_uri(url) for name, url in urls.items()}

    @extend_schema_field(AssetSerializer(many=True))
    def get_outputs(self, job: Job) -> list[dict[str, Any]]:
        outputs = [a for a in job.assets.all() if a.kind == "output"]
        return AssetSerializer(outputs, many=True, context=self.context).data  # type: ignore[return-value]


BatchProgressSerializer = inline_serializer(
    "BatchProgress",
    {
        "total": serializers.IntegerField(help_text="Jobs in the batch."),
        **{
            status.value: serializers.IntegerField(help_text=f"Jobs {status.label.lower()}.")
            for status in JobStatus
        },
        "done": serializers.IntegerField(help_text="Jobs finished: succeeded, failed, canceled."),
        "percent": serializers.IntegerField(help_text="Share of jobs done, 0 to 100."),
    },
)


class BatchSerializer(serializers.ModelSerializer[Batch]):
    """Jobs submitted together, followed as one."""

    progress = serializers.SerializerMethodField(help_text="Its jobs counted by status.")
    urls = serializers.SerializerMethodField(
        help_text="`self`, and `jobs`: the jobs list filtered by this batch."
    )

    class Meta:
        model = Batch
        fields = ["id", "name", "created_at", "completed_at", "progress", "urls"]
        extra_kwargs = {
            "id": {"help_text": "The batch's id."},
            "name": {"help_text": "Its name, if it was given one."},
            "created_at": {"help_text": "When it was submitted."},
            "completed_at": {"help_text": "When its last job finished; null until then."},
        }

    @extend_schema_field(BatchProgressSerializer)
    def get_progress(self, batch: Batch) -> dict[str, int]:
        return batch.progress()

    def get_urls(self, batch: Batch) -> dict[str, str]:
        urls = {
            "self": reverse("api_batch", args=[batch.pk]),
            "jobs": f"{reverse('api_jobs')}?{urlencode({'batch': batch.pk})}",
        }
        return _absolute(self.context.get("request"), urls)


class BatchDetailSerializer(BatchSerializer):
    jobs = serializers.SerializerMethodField(help_text="Its jobs' ids, in the items' order.")
    estimated_finish_at = serializers.SerializerMethodField(
        help_text="When its last job should be done: its last queued job's estimated start "
        "(see a job's `queue`) plus the model's usual time. An estimate; null once it is "
        "done, or while its only unfinished jobs wait for Segmind (`waiting_for_provider`)."
    )

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "jobs", "estimated_finish_at"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_estimated_finish_at(self, batch: Batch) -> str | None:
        finish = queueing.batch_finish_estimate(batch=batch)
        return serializers.DateTimeField().to_representation(finish) if finish else None

    def get_jobs(self, batch: Batch) -> list[str]:
        ids = batch.jobs.order_by("created_at", "pk").values_list("pk", flat=True)
        return [str(pk) for pk in ids]


def job_event_data(*, job_id: Any) -> Any:
    """A job as `GET /api/v1/jobs/<id>` shows it, for its webhook events (its URLs
    absolute from SITE_URL, since there is no request to take the host from)."""
    job = Job.objects.select_related("tenant").prefetch_related("assets").get(pk=job_id)
    return JobSerializer(job).data


def batch_event_data(*, batch_id: Any) -> Any:
    """A batch as `GET /api/v1/batches/<id>` shows it, for its `batch.completed` event."""
    return BatchDetailSerializer(Batch.objects.get(pk=batch_id)).data
