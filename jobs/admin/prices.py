"""What each model costs, edited by operators with a recorded reason."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin import RecordedChangeAdmin, RecordedChangeForm
from accounts.models import OperatorActionCode
from jobs.models import JobPrice


class JobPriceAdminForm(RecordedChangeForm):
    recorded_fields = ("model", "engine", "credits", "credits_per_megapixel")

    class Meta:
        model = JobPrice
        fields = ["model", "engine", "credits", "credits_per_megapixel"]


@admin.register(JobPrice)
class JobPriceAdmin(RecordedChangeAdmin):
    """What each model costs in credits, per engine; a model with no row is free. Every
    add or change asks why and is recorded, so prices are edited on each row's form (not
    in the list) and never deleted (set them to 0 instead)."""

    form = JobPriceAdminForm
    recorded_action = OperatorActionCode.PRICE_CHANGE
    list_display = ["model", "engine", "credits", "credits_per_megapixel", "updated_at"]
    list_filter = ["engine"]
    search_fields = ["model"]

    def recorded_target(self, obj: JobPrice) -> str:
        return f"price of {obj.model} on {obj.engine}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # no row means free: a deletion would change the price unrecorded
