"""Portal pages for jobs, by page area. Where things live:

- `dashboard`: the workspace's dashboard.
- `new_job`: the new-job page and its preview/quote endpoint.
- `jobs`: a job's page, its status poll, cancel and re-run.
- `batches`: the batches list, a batch's page, its status poll and retrying its failures.
- `gallery`: the gallery, an image's page, favourites, delete and ZIP downloads.
- `files`: image bytes (assets, thumbnails, operators' files, the demo's samples).
- `presets`: the presets page and a preset's form.
- `progress`: what job and batch pages show of progress, and the words for it.
- `common`: helpers several pages share.

Only the URLconf imports this package; it re-exports every view it routes to, so
`productstudio/urls.py` keeps `job_views.<view>`.
"""

from jobs.views.batches import batch_detail as batch_detail
from jobs.views.batches import batch_list as batch_list
from jobs.views.batches import batch_retry_failed as batch_retry_failed
from jobs.views.batches import batch_status as batch_status
from jobs.views.dashboard import dashboard as dashboard
from jobs.views.files import asset_file as asset_file
from jobs.views.files import asset_thumbnail as asset_thumbnail
from jobs.views.files import sample_image as sample_image
from jobs.views.files import sample_thumbnail as sample_thumbnail
from jobs.views.files import staff_asset_file as staff_asset_file
from jobs.views.gallery import asset_delete as asset_delete
from jobs.views.gallery import asset_detail as asset_detail
from jobs.views.gallery import asset_favourite as asset_favourite
from jobs.views.gallery import assets_delete as assets_delete
from jobs.views.gallery import assets_zip as assets_zip
from jobs.views.gallery import gallery as gallery
from jobs.views.jobs import job_cancel as job_cancel
from jobs.views.jobs import job_detail as job_detail
from jobs.views.jobs import job_rerun as job_rerun
from jobs.views.jobs import job_status as job_status
from jobs.views.new_job import job_new as job_new
from jobs.views.new_job import job_preview as job_preview
from jobs.views.presets import preset_copy as preset_copy
from jobs.views.presets import preset_delete as preset_delete
from jobs.views.presets import preset_edit as preset_edit
from jobs.views.presets import preset_list as preset_list
from jobs.views.presets import preset_new as preset_new
