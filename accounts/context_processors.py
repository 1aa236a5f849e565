"""Template context for the navigation: the current workspace, the user's others, and
whether the workspace's balance is below its low-balance warning."""

from typing import Any

from django.http import HttpRequest

from accounts.models import Membership


def workspace(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    if membership is None or not request.user.is_authenticated:
        return {}

    def others() -> list[Membership]:
        return list(
            Membership.objects.filter(user_id=membership.user_id)
            .exclude(pk=membership.pk)
            .select_related("tenant")
        )

    tenant = membership.tenant
    return {
        "membership": membership,
        "tenant": tenant,
        "other_memberships": others,
        # The tenant came with the membership: the banner costs no query.
        "low_balance": tenant.credit_balance < tenant.low_balance_threshold,
    }
