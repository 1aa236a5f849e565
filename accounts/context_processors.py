"""Template context for the navigation: the current workspace and the user's others."""

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

    return {"membership": membership, "tenant": membership.tenant, "other_memberships": others}
