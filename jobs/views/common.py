"""Helpers several portal pages share: a workspace's job or asset (404 otherwise), its
presets by model, and the form controls of a model's parameters."""

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from django.shortcuts import get_object_or_404

from accounts.models import Membership
from jobs import catalog
from jobs.forms import param_field_name
from jobs.models import Asset, Job, Preset


def _param_controls(
    spec: catalog.ModelSpec,
    values: Mapping[str, Any],
    *,
    exclude: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Form controls for a model's parameters, built from its JSON Schema, each with its
    name in a shop owner's words (`label`) and the API's name (`name`); the required
    ones first. `exclude` names parameters the form does not offer."""
    schema = spec.json_schema()
    controls = []
    for name, prop in schema["properties"].items():
        if name == spec.image_param or name in exclude:
            continue  # the product photo has its own field
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        pattern = str(prop.get("pattern", ""))
        if "#[0-9a-fA-F]" in pattern:
            kind = "colour"
        elif "enum" in prop:
            kind = "select"
        elif "boolean" in types:
            kind = "boolean"
        elif "integer" in types or "number" in types:
            kind = "number"
        elif name.endswith("prompt"):
            kind = "textarea"
        else:
            kind = "text"
        step = "1" if "integer" in types else "any"
        # A bounded number also gets a slider; the number field stays the value sent,
        # so that empty still means "not given" (the preset's or the default applies).
        slider = kind == "number" and "minimum" in prop and "maximum" in prop
        value = values.get(name, "")
        controls.append(
            {
                "name": name,
                "label": catalog.param_label(name),
                "field": param_field_name(spec.slug, name),
                "kind": kind,
                "schema": prop,
                "step": step,
                "slider": slider,
                "slider_step": _slider_step(prop) if slider and step != "1" else step,
                "slider_value": value if value != "" else prop.get("default", prop.get("minimum")),
                "required": name in schema["required"],
                "value": value,
                # A colour field's picker: its hex colour, and whether "transparent" is one.
                "colour": _hex_of(value) or _hex_of(prop.get("default")) or "#ffffff",
                "transparent": "transparent" in pattern,
            }
        )
    controls.sort(key=lambda c: not c["required"])
    return controls


def _hex_of(value: Any) -> str:
    """`value` as `<input type=color>` takes it (#rrggbb), or "" if it is no hex colour."""
    text = str(value or "").strip().lower()
    if len(text) == 4 and text.startswith("#"):
        text = "#" + "".join(c * 2 for c in text[1:])
    if len(text) == 7 and text.startswith("#") and all(c in "0123456789abcdef" for c in text[1:]):
        return text
    return ""


def _slider_step(prop: Mapping[str, Any]) -> str:
    # A hundred steps across the range: fine enough to place, coarse enough for arrows.
    return format((float(prop["maximum"]) - float(prop["minimum"])) / 100, "g")


def _presets_by_model(membership: Membership) -> dict[str, list[Preset]]:
    presets: dict[str, list[Preset]] = {}
    for preset in Preset.objects.visible_to(membership.tenant).order_by("tenant_id", "name"):
        presets.setdefault(preset.model, []).append(preset)
    return presets


def _job(membership: Membership, job_id: UUID) -> Job:
    return get_object_or_404(
        Job.objects.for_tenant(membership.tenant).select_related(
            "input_asset", "created_by", "tenant"
        ),
        pk=job_id,
    )


def _asset(membership: Membership, asset_id: UUID) -> Asset:
    return get_object_or_404(Asset.objects.for_tenant(membership.tenant), pk=asset_id)
