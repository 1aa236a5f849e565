"""Forms of the job and preset pages.

Model parameters are not Django form fields: they are rendered from each model's JSON
Schema and checked by the catalog's validator, the same one the API and the workers use.
"""

from typing import Any

from django import forms
from django.http import QueryDict

from jobs import catalog, scenes

PACKSHOT = "bria-product-packshot"


class NewJobForm(forms.Form):
    image_url = forms.URLField(
        label="Product image URL",
        required=False,
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://shop.example/photos/mug.jpg"}),
    )
    image = forms.FileField(
        label="or upload a photo",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    model = forms.ChoiceField(label="Model")
    preset = forms.CharField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["model"]
        assert isinstance(field, forms.ChoiceField)
        # Every model can be chosen; the job service refuses those the engine can't run,
        # with a message that says so.
        field.choices = [(m.slug, m.title) for m in catalog.all_models()]
        engine = catalog.current_engine()
        # The packshot asks for nothing but a photo: the simplest first job.
        runnable = [m.slug for m in catalog.all_models() if m.runs_on(engine)]
        field.initial = PACKSHOT if PACKSHOT in runnable else next(iter(runnable), None)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("image_url") and not data.get("image") and not self.errors:
            raise forms.ValidationError("Paste the URL of a product photo or upload one.")
        if data.get("image_url") and data.get("image"):
            raise forms.ValidationError("Give a URL or a file, not both.")
        return data


def param_field_name(model: str, name: str) -> str:
    return f"param-{model}-{name}"


def params_from_post(data: QueryDict, model: str) -> dict[str, str]:
    """The parameter overrides a form posted for `model`; empty fields are not given."""
    prefix = param_field_name(model, "")
    return {
        key[len(prefix) :]: value
        for key in data
        if key.startswith(prefix) and (value := data.get(key, "")).strip() != ""
    }


class PresetForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=300, required=False)
    backdrop = forms.ChoiceField(
        label="Backdrop on the local engine",
        required=False,
        choices=[("", "Chosen from the prompt's words")]
        + [(b.slug, b.name) for b in scenes.BACKDROPS.values()],
        help_text="Without Segmind the product is cut out and placed on this backdrop; "
        "the prompt is kept for when the studio runs on Segmind.",
    )

    def __init__(self, *args: Any, spec: catalog.ModelSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not spec.composed_locally:
            del self.fields["backdrop"]


# The gallery's "status" filter: results (outputs of succeeded jobs) or jobs that made none.
GALLERY_STATUSES = [
    ("", "All"),
    ("succeeded", "Results only"),
    ("queued", "Queued"),
    ("running", "Running"),
    ("waiting_for_provider", "Waiting for Segmind"),
    ("failed", "Failed"),
    ("canceled", "Canceled"),
]


class GalleryFilterForm(forms.Form):
    """The gallery's GET filters; a bad value is a field error, the others still apply."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "SKU, URL, file, preset or model"}
        ),
    )
    model = forms.ChoiceField(label="Model", required=False)
    preset = forms.TypedChoiceField(
        label="Preset",
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "Preset: choose one from the list."},
    )
    batch = forms.UUIDField(
        label="Batch",
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "Batch: not a batch's id."},
    )
    status = forms.ChoiceField(label="Status", required=False, choices=GALLERY_STATUSES)
    sku = forms.CharField(label="SKU", required=False, max_length=100)
    date_from = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "From: enter a date as YYYY-MM-DD."},
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "To: enter a date as YYYY-MM-DD."},
    )
    favourites = forms.BooleanField(label="Favourites only", required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)

    def __init__(self, *args: Any, presets: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model = self.fields["model"]
        preset = self.fields["preset"]
        assert isinstance(model, forms.ChoiceField) and isinstance(preset, forms.ChoiceField)
        model.choices = [("", "All models")] + [(m.slug, m.title) for m in catalog.all_models()]
        preset.choices = [("", "All presets"), *presets]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "To: must be on or after the From date.")
        return data

    @property
    def filtering(self) -> bool:
        """Whether any filter is given (the page number is not a filter)."""
        return any(self.data.get(name) for name in self.fields if name != "page")
