"""Workspaces: creating one, and its settings (name, Segmind plan, its own Segmind key)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import services
from accounts.decorators import workspace_view
from accounts.forms import (
    SegmindKeyForm,
    SegmindPlanForm,
    WorkspaceForm,
    WorkspaceNameForm,
)
from accounts.models import Membership, Tenant


@login_required
def workspace_create(request: HttpRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        assert request.user.is_authenticated  # narrows the type; login_required ensures it
        tenant = services.tenant_create(name=form.cleaned_data["name"], owner=request.user)
        return redirect("dashboard", workspace=tenant.slug)
    return render(request, "accounts/workspace_create.html", {"form": form})


@workspace_view
def workspace_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's settings: its own Segmind key (set, replaced or removed)."""
    tenant = membership.tenant
    form = SegmindKeyForm(request.POST or None)
    if request.method == "POST":
        try:
            services.segmind_key_manager_check(tenant=tenant, by=membership.user)
        except services.AccountError as e:
            messages.error(request, e.message)
            return redirect("workspace_settings", workspace=tenant.slug)
        if request.POST.get("action") == "remove":
            services.segmind_key_clear(tenant=tenant, by=membership.user)
            messages.success(request, "Your Segmind key was removed: new jobs use ours again.")
            return redirect("workspace_settings", workspace=tenant.slug)
        if form.is_valid():
            try:
                check = services.segmind_key_set(
                    tenant=tenant, by=membership.user, key=form.cleaned_data["segmind_key"]
                )
            except services.AccountError as e:
                form.add_error("segmind_key", e.message.removeprefix("segmind_key: "))
            else:
                messages.success(
                    request,
                    f"Segmind accepted the key ending {check.last4}: new jobs run on it.",
                )
                if check.out_of_credit:
                    messages.warning(
                        request, "Segmind says this key's account is out of credit: top it up."
                    )
                return redirect("workspace_settings", workspace=tenant.slug)
    return _settings_page(request, tenant, form=form)


def _settings_page(
    request: HttpRequest,
    tenant: Tenant,
    *,
    form: SegmindKeyForm | None = None,
    name_form: WorkspaceNameForm | None = None,
    plan_form: SegmindPlanForm | None = None,
) -> HttpResponse:
    """The settings page, with the form that was just sent (and its errors) in place."""
    return render(
        request,
        "accounts/workspace_settings.html",
        {
            "form": SegmindKeyForm() if form is None else form,
            "name_form": (
                WorkspaceNameForm(initial={"name": tenant.name}) if name_form is None else name_form
            ),
            "plan_form": _plan_form(tenant) if plan_form is None else plan_form,
            "own_key_fee": settings.SEGMIND_OWN_KEY_FEE,
        },
    )


def _plan_form(tenant: Tenant) -> SegmindPlanForm:
    return SegmindPlanForm(
        initial={
            "segmind_plan": tenant.segmind_plan,
            "segmind_rate_limit": tenant.segmind_rate_limit or None,
        }
    )


@require_POST
@workspace_view
def workspace_rename(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The settings page's name form: a new name, same URLs."""
    tenant = membership.tenant
    form = WorkspaceNameForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, tenant, name_form=form)
    try:
        services.tenant_rename(tenant=tenant, by=membership.user, name=form.cleaned_data["name"])
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, f"The workspace is now called “{tenant.name}”.")
    return redirect("workspace_settings", workspace=tenant.slug)


@require_POST
@workspace_view
def workspace_segmind_plan(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The settings page's plan form: how many requests a minute the own key may send."""
    tenant = membership.tenant
    form = SegmindPlanForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, tenant, plan_form=form)
    try:
        services.tenant_segmind_plan_set(
            tenant=tenant,
            by=membership.user,
            plan=form.cleaned_data["segmind_plan"],
            per_minute=form.cleaned_data.get("segmind_rate_limit"),
        )
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        messages.success(
            request, f"Jobs on your key are now sent at up to {tenant.segmind_per_minute} a minute."
        )
    return redirect("workspace_settings", workspace=tenant.slug)
