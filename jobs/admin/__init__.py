"""Operators' view of the jobs app, by area. Where things live:

- `jobs`: jobs (with the refund page), batches, assets and presets.
- `prices`: job prices, every change recorded with a reason.
- `segmind`: Segmind's state: pauses (and clearing them), key budgets and incidents.

Importing this package registers every model admin (Django's autodiscovery imports
`jobs.admin`); the re-exports name them.
"""

from jobs.admin.jobs import AssetAdmin as AssetAdmin
from jobs.admin.jobs import BatchAdmin as BatchAdmin
from jobs.admin.jobs import JobAdmin as JobAdmin
from jobs.admin.jobs import PresetAdmin as PresetAdmin
from jobs.admin.prices import JobPriceAdmin as JobPriceAdmin
from jobs.admin.segmind import ProviderIncidentAdmin as ProviderIncidentAdmin
from jobs.admin.segmind import ProviderPauseAdmin as ProviderPauseAdmin
from jobs.admin.segmind import SegmindKeyBudgetAdmin as SegmindKeyBudgetAdmin
