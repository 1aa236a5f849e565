"""The API's request bodies: `StrictSerializer` refuses fields it does not know, and
`_valid` checks a JSON body with one (400 naming each field)."""

from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from productstudio.lib.errors import Problem
from productstudio.lib.validation import UNKNOWN_FIELD, unknown_fields


class StrictSerializer(serializers.Serializer[Any]):
    """A request body that refuses fields it does not know, naming them (a typo must not
    be ignored silently), nested objects included."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = unknown_fields(data, self.fields)
            if unknown:
                raise serializers.ValidationError(dict.fromkeys(unknown, UNKNOWN_FIELD))
            # DRF turns a number sent for a text field into text; the schema says string.
            not_text = sorted(
                name
                for name, field in self.fields.items()
                if type(field) is serializers.CharField
                and name in data
                and data[name] is not None
                and not isinstance(data[name], str)
            )
            if not_text:
                raise serializers.ValidationError(dict.fromkeys(not_text, "must be a string"))
        return super().to_internal_value(data)


def _valid(serializer_class: type[serializers.Serializer[Any]], request: Request) -> Any:
    """The request's JSON body, checked by `serializer_class` (400 naming each field)."""
    data = request.data
    if not isinstance(data, dict):
        raise Problem(
            "validation_error", "Send a JSON object.", errors={"request": "not an object"}
        )
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class JobCreateSerializer(serializers.Serializer[Any]):
    """A new job: JSON, or multipart with an `image` file (`params` as a JSON string)."""

    model = serializers.CharField(help_text="A model's slug (GET /api/v1/models).")
    image_url = serializers.URLField(required=False, help_text="The product photo's URL.")
    image = serializers.ImageField(required=False, help_text="Or the photo itself (multipart).")
    preset = serializers.CharField(required=False, help_text="A preset's id or slug.")
    params = serializers.DictField(required=False, help_text="Any of the model's parameters.")
    webhook_url = serializers.URLField(
        required=False,
        help_text="Also send this job's `job.succeeded` / `job.failed` here, signed with the "
        "workspace's secret (GET /api/v1/webhooks/secret). Private addresses are refused.",
    )


class JobRerunSerializer(StrictSerializer):
    params = serializers.DictField(
        required=False,
        help_text="Parameters to change; the others are the job's (a drawn seed is drawn "
        "again unless `seed` is given).",
    )


class ModelResolveRequestSerializer(serializers.Serializer[Any]):
    params = serializers.DictField(
        required=False,
        help_text="The parameters to check (the body itself is read as them when it has no "
        "`params`).",
    )


class PresetCreateSerializer(StrictSerializer):
    model = serializers.CharField(help_text="The model it is for (its slug).")
    name = serializers.CharField(max_length=100, help_text="Its name (its slug follows it).")
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="What it is for."
    )
    params = serializers.DictField(
        required=False, help_text="Any of the model's parameters but the product photo."
    )
    backdrop = serializers.CharField(
        required=False, allow_blank=True, help_text="The local engine's backdrop for scenes."
    )


class PresetUpdateSerializer(StrictSerializer):
    name = serializers.CharField(required=False, max_length=100, help_text="A new name.")
    description = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="A new description."
    )
    params = serializers.DictField(
        required=False, help_text="The parameters it fixes, replacing all of them."
    )
    backdrop = serializers.CharField(
        required=False, allow_blank=True, help_text="A new backdrop (blank: none)."
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and "model" in data:
            raise serializers.ValidationError(
                {"model": "a preset's model can't be changed; create a preset for that model"}
            )
        return super().to_internal_value(data)


class BatchItemSerializer(StrictSerializer):
    image_url = serializers.URLField(
        help_text="The product photo's URL; fetched and checked when the batch is created."
    )
    params = serializers.DictField(
        required=False, help_text="This item's parameters, over the batch's."
    )


class BatchCreateSerializer(StrictSerializer):
    model = serializers.CharField(help_text="A model's slug (GET /api/v1/models), for every item.")
    preset = serializers.CharField(
        required=False, help_text="A preset's id or slug, for every item."
    )
    params = serializers.DictField(
        required=False, help_text="Parameters for every item (an item's own win)."
    )
    name = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="A name to know it by."
    )
    items = BatchItemSerializer(
        many=True, help_text="The photos: 1 to BATCH_MAX_ITEMS (100 by default), one job each."
    )
