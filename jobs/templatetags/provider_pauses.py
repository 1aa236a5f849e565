"""The admin's banner while Segmind refuses a key for want of credit (an open pause)."""

from typing import Any

from django import template
from django.urls import reverse

from jobs.models import ProviderPause

register = template.Library()

# More open pauses than this are summed up with a link to the list.
BANNER_PAUSES = 5


@register.inclusion_tag("admin/jobs/_provider_pause_banner.html", takes_context=True)
def provider_pause_banner(context: template.Context) -> dict[str, Any]:
    """Every admin page shows the open pauses to operators: one small query, on admin
    pages only (a context processor would run on every portal page too)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        return {"pauses": []}
    pauses = list(
        ProviderPause.objects.open()
        .select_related("tenant")
        .order_by("opened_at")[: BANNER_PAUSES + 1]
    )
    return {
        "pauses": pauses[:BANNER_PAUSES],
        "more": len(pauses) > BANNER_PAUSES,
        "changelist": reverse("admin:jobs_providerpause_changelist") + "?cleared_at__isnull=True",
    }
