"""What each model costs, edited by operators with a recorded reason."""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.admin import RecordedChangeAdmin, RecordedChangeForm
from accounts.models import OperatorActionCode
from jobs.catalog import all_models, get_model
from jobs.models import JobPrice

# Django's own admin icon: a price that prices nothing is a warning, not a detail.
WARNING_ICON = "admin/img/icon-alert.svg"


def _model_choices() -> list[tuple[str, str]]:
    return [(spec.slug, f"{spec.title} ({spec.slug})") for spec in all_models()]


class JobPriceAdminForm(RecordedChangeForm):
    recorded_fields = ("model", "engine", "credits", "credits_per_megapixel")

    # The catalog's models only: a name typed by hand ("Bria packshot") would price nothing.
    model = forms.ChoiceField(
        choices=_model_choices,
        help_text="The catalog's models. A price applies to jobs of this model on the engine "
        "below.",
    )

    class Meta:
        model = JobPrice
        fields = ["model", "engine", "credits", "credits_per_megapixel"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = self.instance.model
        if current and get_model(current) is None:
            # Shown as it is rather than silently replaced by the first choice; saving it
            # is refused (JobPrice.clean) until the operator picks a catalog model.
            field = self.fields["model"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [(current, f"{current}: not in the catalog"), *_model_choices()]


@admin.register(JobPrice)
class JobPriceAdmin(RecordedChangeAdmin):
    """What each model costs in credits, per engine; a model with no row is free. Every
    add or change asks why and is recorded, so prices are edited on each row's form (not
    in the list) and never deleted (set them to 0 instead)."""

    form = JobPriceAdminForm
    recorded_action = OperatorActionCode.PRICE_CHANGE
    list_display = [
        "model",
        "model_title",
        "engine",
        "credits",
        "credits_per_megapixel",
        "updated_at",
    ]
    list_filter = ["engine"]
    search_fields = ["model"]

    @admin.display(description="In the catalog as")
    def model_title(self, obj: JobPrice) -> SafeString | str:
        spec = get_model(obj.model)
        if spec is None:
            return format_html(
                '<img src="{}" alt="Warning"> Not in the catalog: prices nothing',
                static(WARNING_ICON),
            )
        if not spec.runs_on("local" if obj.engine == "local" else "segmind"):
            return format_html(
                '<img src="{}" alt="Warning"> {}: not run on this engine',
                static(WARNING_ICON),
                spec.title,
            )
        return spec.title

    def recorded_target(self, obj: JobPrice) -> str:
        return f"price of {obj.model} on {obj.engine}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # no row means free: a deletion would change the price unrecorded
