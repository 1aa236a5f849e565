"""Template context for the navigation: the current workspace, the user's others, the
section the page belongs to, and whether the workspace's balance is below its low-balance
warning."""

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from accounts.models import Membership

# The navigation's sections and the pages (URL names) each one holds: the section's link is
# marked as the current one on all of them. A job's page is under the gallery, which lists
# jobs and their results; the page of a batch's job puts itself under Batches (its view
# passes `nav_section`, which wins over this).
NAV_SECTIONS = {
    "dashboard": {"dashboard"},
    "job_new": {"job_new"},
    "batch_list": {"batch_list", "batch_detail"},
    "gallery": {"gallery", "asset_detail", "job_detail"},
    "preset_list": {"preset_list", "preset_new", "preset_edit"},
    "credits": {"credits"},
    "team": {"team"},
    "workspace_settings": {"workspace_settings", "workspace_rename", "api_keys"},
}


def _optional_url(name: str, slug: str) -> str | None:
    # A section whose pages are not installed (yet) is left out of the navigation.
    try:
        return reverse(name, args=[slug])
    except NoReverseMatch:
        return None


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
    match = getattr(request, "resolver_match", None)
    url_name = match.url_name if match else None
    section = next((s for s, names in NAV_SECTIONS.items() if url_name in names), None)
    return {
        "membership": membership,
        "tenant": tenant,
        "other_memberships": others,
        # The tenant came with the membership: the banner costs no query.
        "low_balance": tenant.credit_balance < tenant.low_balance_threshold,
        "nav_section": section,
        # "page" on the section's own page, "true" on the pages under it (a job, a preset).
        "nav_current": "page" if section == url_name else "true",
        "batch_list_url": _optional_url("batch_list", tenant.slug),
    }
