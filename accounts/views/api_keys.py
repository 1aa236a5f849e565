"""The workspace's API keys page."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import services
from accounts.decorators import workspace_view
from accounts.forms import (
    ApiKeyForm,
)
from accounts.models import ApiKey, Membership


# Never cached: the response to a creation holds the new key, which exists nowhere else.
@never_cache
@workspace_view
def api_keys(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's API keys. Creating one answers the POST itself with the whole key,
    shown this once: it is neither stored nor put in a URL or a session."""
    tenant = membership.tenant
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST":
        try:
            services.api_key_manager_check(tenant=tenant, by=membership.user, verb="create")
        except services.AccountError as e:
            messages.error(request, e.message)
            return redirect("api_keys", workspace=tenant.slug)
        if form.is_valid():
            try:
                created = services.api_key_create(
                    tenant=tenant, name=form.cleaned_data["name"], created_by=membership.user
                )
            except services.AccountError as e:
                form.add_error(None, e.message)
            else:
                form = ApiKeyForm()
    keys = ApiKey.objects.for_tenant(tenant).select_related("created_by")
    return render(
        request, "accounts/api_keys.html", {"form": form, "keys": keys, "created": created}
    )


@require_POST
@workspace_view
def api_key_revoke(request: HttpRequest, membership: Membership, key_id: str) -> HttpResponse:
    tenant = membership.tenant
    key = get_object_or_404(ApiKey.objects.for_tenant(tenant), pk=key_id)
    try:
        revoked = services.api_key_revoke(tenant=tenant, key_id=key.pk, by=membership.user)
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        if revoked:
            messages.success(request, f"Key “{key.name}” revoked: it no longer works.")
    return redirect("api_keys", workspace=tenant.slug)
