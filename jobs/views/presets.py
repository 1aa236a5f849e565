"""The presets page: a workspace's own presets and the system's, and the form to make,
edit, copy or delete one."""

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.decorators import workspace_view
from accounts.models import Membership
from jobs import catalog, services
from jobs.forms import PresetForm, params_from_post
from jobs.models import Preset
from jobs.views.common import _param_controls, _presets_by_model


@workspace_view
def preset_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    presets = _presets_by_model(membership)
    groups = [
        {
            "spec": spec,
            "own": [p for p in presets.get(spec.slug, []) if not p.is_system],
            "system": [p for p in presets.get(spec.slug, []) if p.is_system],
        }
        for spec in catalog.all_models()
    ]
    has_own = any(g["own"] for g in groups)
    return render(request, "jobs/presets.html", {"groups": groups, "has_own": has_own})


def _own_preset(membership: Membership, preset_id: int) -> Preset:
    return get_object_or_404(Preset.objects.for_tenant(membership.tenant), pk=preset_id)


def _preset_form_page(
    request: HttpRequest,
    membership: Membership,
    spec: catalog.ModelSpec,
    preset: Preset | None,
) -> HttpResponse:
    initial = (
        {"name": preset.name, "description": preset.description, "backdrop": preset.backdrop}
        if preset
        else {}
    )
    form = PresetForm(request.POST or None, initial=initial, spec=spec)
    values: Mapping[str, Any] = preset.params if preset else {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = params_from_post(request.POST, spec.slug)
        if form.is_valid():
            try:
                if preset is None:
                    preset = services.preset_create(
                        tenant=membership.tenant,
                        user=membership.user,
                        model=spec.slug,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        params=values,
                        backdrop=form.cleaned_data.get("backdrop", ""),
                    )
                else:
                    services.preset_update(
                        tenant=membership.tenant,
                        preset=preset,
                        name=form.cleaned_data["name"],
                        description=form.cleaned_data["description"],
                        params=values,
                        backdrop=form.cleaned_data.get("backdrop", preset.backdrop),
                    )
            except services.PresetError as e:
                errors = e.errors
                for own in ("name", "backdrop"):
                    if own in errors and own in form.fields:
                        form.add_error(own, errors.pop(own))
                form.add_error(None, "The preset was not saved: fix the fields marked below.")
                # The product photo and the SKU have no control on this page: say so
                # above the form.
                for field, rule in errors.items():
                    if field == spec.image_param or field in catalog.PER_PHOTO_PARAMS:
                        form.add_error(None, f"{catalog.param_label(field)}: {rule}")
            else:
                messages.success(request, f"Preset “{preset.name}” saved.")
                return redirect("preset_list", workspace=membership.tenant.slug)
    return render(
        request,
        "jobs/preset_form.html",
        {
            "form": form,
            "spec": spec,
            "preset": preset,
            # The SKU names one product: it comes with each photo, never from a preset.
            "controls": _param_controls(spec, values, exclude=catalog.PER_PHOTO_PARAMS),
            "errors": errors,
        },
    )


@workspace_view
def preset_new(request: HttpRequest, membership: Membership) -> HttpResponse:
    spec = catalog.get_model(request.GET.get("model", ""))
    if spec is None:
        return render(request, "jobs/preset_choose_model.html", {"models": catalog.all_models()})
    return _preset_form_page(request, membership, spec, None)


@workspace_view
def preset_edit(request: HttpRequest, membership: Membership, preset_id: int) -> HttpResponse:
    preset = _own_preset(membership, preset_id)
    spec = preset.spec
    if spec is None:
        raise Http404("This preset's model is no longer offered.")
    return _preset_form_page(request, membership, spec, preset)


@require_POST
@workspace_view
def preset_copy(request: HttpRequest, membership: Membership, preset_id: int) -> HttpResponse:
    source = get_object_or_404(Preset.objects.visible_to(membership.tenant), pk=preset_id)
    copy = services.preset_copy(tenant=membership.tenant, user=membership.user, preset=source)
    messages.success(request, f"Copied “{source.name}”: edit your copy below.")
    return redirect("preset_edit", workspace=membership.tenant.slug, preset_id=copy.pk)


@require_POST
@workspace_view
def preset_delete(request: HttpRequest, membership: Membership, preset_id: int) -> HttpResponse:
    preset = _own_preset(membership, preset_id)
    services.preset_delete(tenant=membership.tenant, preset=preset)
    messages.success(request, f"Preset “{preset.name}” deleted.")
    return redirect("preset_list", workspace=membership.tenant.slug)
