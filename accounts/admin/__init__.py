"""Operators' view of users, workspaces, members, invitations, API keys and credits:
the ledger, packs, Stripe's sessions and events, and granting or adjusting credits; of
webhooks: endpoints (re-enabled here) and their delivery log; the throttles: failed log-ins
(django-axes' attempts), reset, sign-up and API-key counters, each with "Lift lock"; and
the operators' audit trail. Every change of money, of a workspace's standing or of an
operator's (users' flags, groups and permissions; prices and packs) made here asks why and
is recorded (`operator_action_record`) in the same transaction as the change; users,
workspaces and groups are not deleted here.

By area: ``base`` (shared), ``users``, ``workspaces``, ``credits``, ``webhooks``,
``throttling``, ``audit``; importing them here registers their ModelAdmins (the admin
index sorts models by name, so the order does not show).
"""

from accounts.admin import (  # noqa: F401  (registers the ModelAdmins)
    audit,
    credits,
    throttling,
    users,
    webhooks,
    workspaces,
)
from accounts.admin.base import (
    ReadOnlyAdmin as ReadOnlyAdmin,
)
from accounts.admin.base import (
    RecordedChangeAdmin as RecordedChangeAdmin,
)
from accounts.admin.base import (
    RecordedChangeForm as RecordedChangeForm,
)
from accounts.admin.base import (
    operator_reason_confirm as operator_reason_confirm,
)
