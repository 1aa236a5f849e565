"""The REST API of jobs, by resource; productstudio/urls.py routes to the views named here.

Authenticated by the workspace's API key; a session works too for a signed-in member,
who sees the workspace they last opened. Errors come in one shape (problem+json, see
`productstudio.lib.errors`).

Where things live:
- `jobs`: listing (with filters), creating, reading, canceling and rerunning jobs.
- `batches`: jobs submitted together and followed as one.
- `assets`: the workspace's images and their signed download links.
- `presets`: the workspace's presets and the system's.
- `models`: the catalog with prices, and checking a model's parameters.
- `serializers`: request bodies (`StrictSerializer`, `_valid`).
- `common`: helpers the resources share (acting user, refusals, bad queries).
- `examples`: the OpenAPI examples.
The responses' shapes of jobs, batches and assets are in `jobs.payloads`, shared with the
webhook events.
"""

from jobs.api.assets import asset_download as asset_download
from jobs.api.assets import asset_retrieve as asset_retrieve
from jobs.api.assets import assets_list as assets_list
from jobs.api.batches import batch_retrieve as batch_retrieve
from jobs.api.batches import batches_list as batches_list
from jobs.api.examples import JOB_EXAMPLE as JOB_EXAMPLE
from jobs.api.jobs import job_cancel as job_cancel
from jobs.api.jobs import job_rerun as job_rerun
from jobs.api.jobs import job_retrieve as job_retrieve
from jobs.api.jobs import jobs_list as jobs_list
from jobs.api.models import model_resolve as model_resolve
from jobs.api.models import model_retrieve as model_retrieve
from jobs.api.models import models_list as models_list
from jobs.api.presets import preset_copy as preset_copy
from jobs.api.presets import preset_detail as preset_detail
from jobs.api.presets import presets_list as presets_list
