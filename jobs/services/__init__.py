"""Job operations: submit a product photo, run a job, keep its images.

A job is submitted only once its input has been fetched and checked, so bad input never
leaves a job behind. Running a job claims each step with a conditional update: a task
delivered twice, or two workers racing, do the work once.

Where things live (callers use `services.<name>`; the modules import each other directly;
the reads the API's representation needs too, queue places and download links, are in
jobs.selectors and re-exported here):

- errors:           JobError, the refusal every job operation raises; INTERNAL_ERROR_MESSAGE
- inputs:           a job's product photo (upload or URL) read and checked; image memory limits
- thumbnails:       assets' thumbnails: made once, by whoever gets there first; the backfill
- assets:           storing an image as an asset, favourites, deleting outputs and their files
- downloads:        a gallery's ZIP (download names and links: jobs.selectors.downloads)
- pricing:          where a job runs (job_engine) and what it costs (job_quote, job_price);
                    own_key_fee
- segmind_keys:     Segmind keys (SegmindKey, segmind_key_for) and their budgets' view (of
                    the keys in use: segmind_budgets_in_use_view)
- tallies:          the running totals of ended jobs that /metrics reads (job_tally_add;
                    job_tallies_gathered for a transaction that ends many)
- dispatch:         enqueue (a task to django-q2); the Segmind dispatcher started, its lease watched
- events:           the webhook events of jobs and batches (their data from jobs.payloads)
- batch_completion: a batch completed once its last job finishes (batch_complete_check)
- runs:             local jobs run in turn (local engine); job_succeed, job_fail, job_cancel
- pauses:           Segmind's 406 breaker: pauses per key, probes, clearing (by an operator:
                    provider_pause_operator_clear), the operators' email
- preview:          the new-job page's preview: parameters and the price of its photos' jobs
- submit:           job_submit, job_resolve_params, job_enqueue, job_rerun (job_rerun_or_retry)
- batches:          batch_submit (API), batch_submit_portal (new-job page), batch_retry_failed
- refunds:          an operator's refund of a succeeded job, with its audit record
                    (job_operator_refund)
- sweeper:          jobs_sweep (every minute), jobs_unsent_settle, failing jobs that waited too long
- presets:          presets: a workspace's own and the system presets (presets_sync_system);
                    the one a job names (preset_visible_get)
"""

from jobs.selectors.downloads import (
    AssetUrl,
    AssetUrlError,
    asset_download_check,
    asset_download_url,
    asset_filename,
)
from jobs.selectors.queue import (
    DISPATCHER_LEASE,
    LOCAL_RECENT_JOBS,
    SEGMIND_FALLBACK_SECONDS,
    QueuePlace,
    batch_finish_estimate,
    job_queue_place,
    local_typical_seconds,
    model_typical_seconds,
)
from jobs.services.assets import (
    asset_create,
    asset_delete,
    asset_favourite_set,
    asset_files_discard,
    assets_delete,
)
from jobs.services.batch_completion import batch_complete_check, batches_complete_pending
from jobs.services.batches import (
    BATCH_FETCH_THREADS,
    SKU_MAX_LENGTH,
    BatchItem,
    PhotoSource,
    PortalBatch,
    batch_retry_failed,
    batch_submit,
    batch_submit_portal,
)
from jobs.services.dispatch import (
    LEASE,
    LEASE_SECONDS,
    WATCH_POLL_SECONDS,
    dispatcher_ensure,
    dispatcher_watch,
    dispatcher_watch_lease,
    enqueue,
)
from jobs.services.downloads import GALLERY_ZIP_SPOOL_BYTES, assets_zip
from jobs.services.errors import INTERNAL_ERROR_MESSAGE, JobError
from jobs.services.pauses import (
    jobs_waiting_unpaused_resume,
    provider_pause_clear,
    provider_pause_for,
    provider_pause_notify,
    provider_pause_open,
    provider_pause_operator_clear,
    provider_pause_recipients,
    provider_pauses_stale_clear,
    provider_probes_start,
)
from jobs.services.presets import (
    SYSTEM_PRESETS_FILE,
    PresetError,
    preset_choices,
    preset_copy,
    preset_copy_name,
    preset_create,
    preset_delete,
    preset_own_check,
    preset_params_validate,
    preset_update,
    preset_visible_get,
    presets_sync_system,
)
from jobs.services.preview import SEED_DRAWN_LABEL, PreviewQuote, job_preview_quote
from jobs.services.pricing import (
    Quote,
    job_engine,
    job_price,
    job_prices,
    job_quote,
    own_key_fee,
    prices_missing,
)
from jobs.services.refunds import job_operator_refund
from jobs.services.runs import (
    CLAIM_CANDIDATES,
    job_cancel,
    job_fail,
    job_outputs_store,
    job_params_check,
    job_run,
    job_run_next,
    job_succeed,
    local_job_claim_next,
)
from jobs.services.segmind_keys import (
    BudgetView,
    SegmindKey,
    segmind_budget_view,
    segmind_budgets_in_use_view,
    segmind_key_for,
    segmind_key_id,
    segmind_key_verify,
    segmind_keys_in_use,
)
from jobs.services.submit import (
    job_enqueue,
    job_rerun,
    job_rerun_or_retry,
    job_resolve_params,
    job_submit,
)
from jobs.services.sweeper import (
    jobs_queue_wait_expire,
    jobs_sweep,
    jobs_unsent_settle,
    jobs_wait_expire,
)
from jobs.services.tallies import job_tallies_gathered
from jobs.services.thumbnails import asset_thumbnail_ensure, assets_thumbnails_backfill

__all__ = [
    "BATCH_FETCH_THREADS",
    "CLAIM_CANDIDATES",
    "DISPATCHER_LEASE",
    "GALLERY_ZIP_SPOOL_BYTES",
    "INTERNAL_ERROR_MESSAGE",
    "LEASE",
    "LEASE_SECONDS",
    "LOCAL_RECENT_JOBS",
    "SEED_DRAWN_LABEL",
    "SEGMIND_FALLBACK_SECONDS",
    "SKU_MAX_LENGTH",
    "SYSTEM_PRESETS_FILE",
    "WATCH_POLL_SECONDS",
    "AssetUrl",
    "AssetUrlError",
    "BatchItem",
    "BudgetView",
    "JobError",
    "PhotoSource",
    "PortalBatch",
    "PresetError",
    "PreviewQuote",
    "QueuePlace",
    "Quote",
    "SegmindKey",
    "asset_create",
    "asset_delete",
    "asset_download_check",
    "asset_download_url",
    "asset_favourite_set",
    "asset_filename",
    "asset_files_discard",
    "asset_thumbnail_ensure",
    "assets_delete",
    "assets_thumbnails_backfill",
    "assets_zip",
    "batch_complete_check",
    "batch_finish_estimate",
    "batch_retry_failed",
    "batch_submit",
    "batch_submit_portal",
    "batches_complete_pending",
    "dispatcher_ensure",
    "dispatcher_watch",
    "dispatcher_watch_lease",
    "enqueue",
    "job_cancel",
    "job_engine",
    "job_enqueue",
    "job_fail",
    "job_operator_refund",
    "job_outputs_store",
    "job_params_check",
    "job_preview_quote",
    "job_price",
    "job_prices",
    "job_queue_place",
    "job_quote",
    "job_rerun",
    "job_rerun_or_retry",
    "job_resolve_params",
    "job_run",
    "job_run_next",
    "job_submit",
    "job_succeed",
    "job_tallies_gathered",
    "jobs_queue_wait_expire",
    "jobs_sweep",
    "jobs_unsent_settle",
    "jobs_wait_expire",
    "jobs_waiting_unpaused_resume",
    "local_job_claim_next",
    "local_typical_seconds",
    "model_typical_seconds",
    "own_key_fee",
    "preset_choices",
    "preset_copy",
    "preset_copy_name",
    "preset_create",
    "preset_delete",
    "preset_own_check",
    "preset_params_validate",
    "preset_update",
    "preset_visible_get",
    "presets_sync_system",
    "prices_missing",
    "provider_pause_clear",
    "provider_pause_for",
    "provider_pause_notify",
    "provider_pause_open",
    "provider_pause_operator_clear",
    "provider_pause_recipients",
    "provider_pauses_stale_clear",
    "provider_probes_start",
    "segmind_budget_view",
    "segmind_budgets_in_use_view",
    "segmind_key_for",
    "segmind_key_id",
    "segmind_key_verify",
    "segmind_keys_in_use",
]
