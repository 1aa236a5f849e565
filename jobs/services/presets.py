"""Presets: a workspace's own (created, edited, copied, deleted) and the system presets
shipped in jobs/system_presets.json."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.db.models import Q
from django.utils.text import slugify

from accounts.models import Tenant, User
from jobs import catalog
from jobs.engines.local import scenes
from jobs.models import Preset
from jobs.services.errors import JobError
from productstudio.lib.errors import CodedError


class PresetError(CodedError):
    """A refused preset; `errors` maps each field to what is wrong with it. The code is
    `validation_error`, or `forbidden` for a system preset, which is read-only."""

    def __init__(self, errors: Mapping[str, str], *, code: str = "validation_error") -> None:
        self.errors = dict(errors)
        super().__init__(code, "; ".join(f"{field}: {rule}" for field, rule in errors.items()))


def preset_own_check(*, tenant: Tenant, preset: Preset, action: str) -> None:
    """Refuse to change (`action`: "edited", "deleted") a preset that is not the
    tenant's own: `forbidden` for a system preset, which is read-only for everyone."""
    if preset.tenant_id == tenant.pk:
        return
    if preset.is_system:
        raise PresetError(
            {"preset": f"system presets can't be {action}; copy it to make your own"},
            code="forbidden",
        )
    raise PresetError({"preset": f"only your workspace's own presets can be {action}"})


def preset_choices(*, tenant: Tenant) -> list[tuple[str, list[tuple[int, str]]]]:
    """The presets a workspace can pick, for a select: one group per model (in the
    catalog's order, titled with the model), each preset once, its own marked "(yours)"
    and the system's "(system)", as names repeat across models and copies."""
    by_model: dict[str, list[tuple[int, str]]] = {}
    for pk, model, name, tenant_id in (
        Preset.objects.visible_to(tenant)
        .order_by("model", "tenant_id", "name", "pk")
        .values_list("pk", "model", "name", "tenant_id")
    ):
        by_model.setdefault(model, []).append(
            (pk, f"{name} ({'system' if tenant_id is None else 'yours'})")
        )
    groups = [
        (spec.title, sorted(by_model.pop(spec.slug), key=lambda c: c[1].casefold()))
        for spec in catalog.all_models()
        if spec.slug in by_model
    ]
    # A preset of a model no longer offered can still be filtered on.
    groups += [(slug, choices) for slug, choices in sorted(by_model.items())]
    return groups


def preset_visible_get(*, tenant: Tenant, value: Any, slugs: bool = True) -> Preset | None:
    """The preset a job names (None for none): one the workspace may use, its own or a
    system preset, named by id or, if `slugs`, by slug (its own first, when a slug names
    both). Anything else is refused with a JobError naming the `preset` field.

    The new-job page names presets by id only (`slugs` False); the API by either."""
    if value in (None, ""):
        return None
    text = str(value)
    # ASCII digits of a size an id can have: int() refuses "²", which isdigit() accepts.
    is_id = text.isascii() and text.isdigit() and len(text) < 19
    if not slugs and not is_id:
        raise JobError("validation_error", "preset: choose a preset from the list.", field="preset")
    visible = Preset.objects.visible_to(tenant)
    preset = None
    if not slugs:
        preset = visible.filter(pk=int(text)).first()
    # PostgreSQL refuses NUL in a query, and no slug has one.
    elif "\x00" not in text:
        query = Q(slug=text) | Q(pk=int(text)) if is_id else Q(slug=text)
        # Not by ordering on tenant_id: databases disagree on where NULL (system) sorts.
        preset = visible.filter(query, tenant=tenant).first() or visible.filter(query).first()
    if preset is None:
        # The API names what it was sent; the page's select can only have gone stale.
        missing = f"no preset '{text}' in this workspace" if slugs else "this preset does not exist"
        error = JobError("validation_error", f"preset: {missing}.", field="preset")
        error.errors = {"preset": missing}
        raise error
    return preset


def preset_params_validate(*, spec: catalog.ModelSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """A preset's parameters, checked by the catalog's validator (only those it sets)."""
    if spec.image_param in params:
        raise PresetError({spec.image_param: "the product photo comes with each job"})
    per_photo = sorted(catalog.PER_PHOTO_PARAMS & set(params) & set(spec.params))
    if per_photo:
        raise PresetError(
            dict.fromkeys(per_photo, "names one product: it comes with each photo, not a preset")
        )
    try:
        return catalog.resolve_params(spec, params, partial=True)
    except catalog.ParamsError as e:
        raise PresetError(e.errors) from e


def _preset_slug(tenant: Tenant, name: str, exclude: int | None = None) -> str:
    base = slugify(name)[:70] or "preset"
    slug, n = base, 2
    taken = Preset.objects.for_tenant(tenant)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    while taken.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def preset_create(
    *,
    tenant: Tenant,
    user: User | None,
    model: str,
    name: str,
    params: Mapping[str, Any],
    description: str = "",
    backdrop: str = "",
) -> Preset:
    """Save a tenant's own preset; its parameters go through the catalog's validator."""
    spec = catalog.get_model(model)
    if spec is None:
        raise PresetError({"model": f"unknown model '{model}'"})
    name = name.strip()
    if not name:
        raise PresetError({"name": "a preset needs a name"})
    cleaned = preset_params_validate(spec=spec, params=params)
    _preset_backdrop_check(backdrop)
    return Preset.objects.create(
        tenant=tenant,
        model=spec.slug,
        slug=_preset_slug(tenant, name),
        name=name[:100],
        description=description.strip()[:300],
        params=cleaned,
        backdrop=backdrop,
        created_by=user,
    )


def preset_update(
    *,
    tenant: Tenant,
    preset: Preset,
    name: str,
    params: Mapping[str, Any],
    description: str = "",
    backdrop: str | None = None,
) -> Preset:
    """Edit one of the tenant's own presets (system presets are copied, not edited);
    ``backdrop`` None keeps the preset's."""
    preset_own_check(tenant=tenant, preset=preset, action="edited")
    spec = catalog.get_model(preset.model)
    assert spec is not None
    name = name.strip()
    if not name:
        raise PresetError({"name": "a preset needs a name"})
    preset.params = preset_params_validate(spec=spec, params=params)
    if backdrop is not None:
        _preset_backdrop_check(backdrop)
        preset.backdrop = backdrop
    preset.name = name[:100]
    preset.description = description.strip()[:300]
    if preset.slug != (slug := _preset_slug(tenant, name, exclude=preset.pk)):
        preset.slug = slug
    preset.save()
    return preset


def _preset_backdrop_check(backdrop: str) -> None:
    # "transparent" names the cut-out packshot's look; it is not drawn.
    if backdrop and backdrop != "transparent" and backdrop not in scenes.BACKDROPS:
        names = ", ".join(scenes.BACKDROPS)
        raise PresetError({"backdrop": f"'{backdrop}' is not a backdrop; choose one of {names}"})


def preset_copy(*, tenant: Tenant, user: User | None, preset: Preset) -> Preset:
    """A tenant's own copy of a system preset (or of one of its own), to edit freely."""
    if preset.tenant_id not in (None, tenant.pk):
        raise PresetError({"preset": "not found"})
    return preset_create(
        tenant=tenant,
        user=user,
        model=preset.model,
        name=preset_copy_name(tenant=tenant, name=preset.name),
        params=preset.params,
        description=preset.description,
        backdrop=preset.backdrop,
    )


_COPY_SUFFIX = re.compile(r" \(copy(?: \d+)?\)$")
_NAME_MAX = Preset._meta.get_field("name").max_length or 100


def preset_copy_name(*, tenant: Tenant, name: str) -> str:
    """A name for a copy of the preset `name` that no preset of the workspace has:
    "Dark luxury spotlight (copy)", then "(copy 2)", "(copy 3)"; a copy of a copy is
    numbered on, never "(copy) (copy)". Told apart from the original in every picker."""
    base = _COPY_SUFFIX.sub("", name.strip())
    taken = {
        taken.casefold()
        for taken in Preset.objects.for_tenant(tenant)
        .filter(name__istartswith=base[: _NAME_MAX - 12])
        .values_list("name", flat=True)
    }
    number = 1
    while True:
        suffix = " (copy)" if number == 1 else f" (copy {number})"
        candidate = base[: _NAME_MAX - len(suffix)] + suffix
        if candidate.casefold() not in taken:
            return candidate
        number += 1


def preset_delete(*, tenant: Tenant, preset: Preset) -> None:
    """Delete one of the tenant's own presets; jobs made with it keep their parameters."""
    preset_own_check(tenant=tenant, preset=preset, action="deleted")
    preset.delete()


SYSTEM_PRESETS_FILE = Path(__file__).parent.parent / "system_presets.json"


def presets_sync_system(*, path: Path = SYSTEM_PRESETS_FILE) -> int:
    """Make the system presets match `system_presets.json` (run after every migrate).

    Presets are matched by slug: new ones are created, changed ones updated, and ones no
    longer in the file deleted (jobs keep their resolved parameters).
    """
    if not path.exists():
        return 0
    items = json.loads(path.read_text())
    slugs = []
    for item in items:
        spec = catalog.get_model(item["model"])
        if spec is None:
            raise ValueError(f"system preset {item['slug']}: unknown model {item['model']}")
        Preset.objects.update_or_create(
            tenant=None,
            slug=item["slug"],
            defaults={
                "model": spec.slug,
                "name": item["name"],
                "description": item.get("description", ""),
                "backdrop": item.get("backdrop", ""),
                "params": preset_params_validate(spec=spec, params=item.get("params", {})),
            },
        )
        slugs.append(item["slug"])
    Preset.objects.system().exclude(slug__in=slugs).delete()
    return len(slugs)
