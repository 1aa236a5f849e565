"""The API's catalog: the models, their prices for the caller's workspace and their
parameters' schema, and checking parameters for one (`resolve`)."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_workspace
from jobs import catalog, services
from jobs.api.examples import MODEL_EXAMPLE
from jobs.api.serializers import ModelResolveRequestSerializer
from jobs.models import JobPrice
from productstudio.lib.errors import PROBLEMS, Problem
from productstudio.lib.pagination import page_of


def _price_data(price: JobPrice | None, *, own_key: bool) -> dict[str, Any]:
    if own_key:
        fee = services.own_key_fee()
        return {"credits": fee, "credits_per_megapixel": 0, "own_key": True}
    return {
        "credits": price.credits if price else 0,
        "credits_per_megapixel": price.credits_per_megapixel if price else 0,
        "own_key": False,
    }


def _model_data(
    spec: catalog.ModelSpec, *, engine: catalog.Engine, own_key: bool, price: JobPrice | None
) -> dict[str, Any]:
    size = spec.output_size({})
    price_data = _price_data(price, own_key=own_key)
    if price is not None and not own_key:
        price_data["default_price"] = price.for_params(spec.defaults())
    else:
        price_data["default_price"] = price_data["credits"]
    return {
        "slug": spec.slug,
        "title": spec.title,
        "summary": spec.summary,
        "kind": spec.kind,
        "typical_seconds": spec.typical_seconds,
        "input_image_params": list(spec.input_image_params),
        "engine": engine,
        "available": spec.runs_on(engine),
        # In credits: `credits`, plus `credits_per_megapixel` for each started megapixel
        # of a model sized by `megapixel`; `default_price` is a job with the defaults.
        "price": price_data,
        "defaults": spec.defaults(),
        "output_size": {"width": size[0], "height": size[1]} if size else None,
        "params_schema": spec.json_schema(),
    }


def _catalog(request: Request, specs: list[catalog.ModelSpec]) -> list[dict[str, Any]]:
    tenant = request_workspace(request)
    if tenant is None:
        engine, own_key = catalog.current_engine(), False
    else:
        engine, own_key = services.job_engine(tenant=tenant)
    prices = services.job_prices(tenant=tenant)
    return [
        _model_data(spec, engine=engine, own_key=own_key, price=prices.get(spec.slug))
        for spec in specs
    ]


# -- the catalog's shapes, for the schema (the views build plain dicts) -----------------


class ModelPriceSerializer(serializers.Serializer[Any]):
    credits = serializers.IntegerField(
        help_text="Credits per job (for a model sized by megapixel: its base)."
    )
    credits_per_megapixel = serializers.IntegerField(
        help_text="Credits added for each started megapixel of the output; 0 for most models."
    )
    own_key = serializers.BooleanField(
        help_text="The workspace runs jobs on its own Segmind key: Segmind bills it, and "
        "`credits` is only the platform's fee."
    )
    default_price = serializers.IntegerField(
        help_text="Credits for a job with the model's default parameters."
    )


class OutputSizeSerializer(serializers.Serializer[Any]):
    width = serializers.IntegerField(help_text="Width in pixels.")
    height = serializers.IntegerField(help_text="Height in pixels.")


class CatalogModelSerializer(serializers.Serializer[Any]):
    """A model of the catalog, as the caller's workspace would run it."""

    slug = serializers.CharField(help_text="Its name in jobs' `model` and in URLs.")
    title = serializers.CharField(help_text="Its name, for people.")
    summary = serializers.CharField(help_text="What it makes, in a sentence.")
    kind = serializers.ChoiceField(
        choices=["v2", "workflow"],
        help_text="`v2`: one Segmind model; `workflow`: a Segmind PixelFlow workflow.",
    )
    typical_seconds = serializers.FloatField(
        allow_null=True, help_text="How long a job usually takes on Segmind, if known."
    )
    input_image_params = serializers.ListField(
        child=serializers.CharField(),
        help_text="Its parameters that take a picture; the first is the product photo.",
    )
    engine = serializers.ChoiceField(
        choices=["local", "segmind"],
        help_text="The engine the caller's jobs run on: `segmind`, or `local` (this studio's "
        "own, for a few models).",
    )
    available = serializers.BooleanField(help_text="Whether `engine` can run this model.")
    price = ModelPriceSerializer(help_text="Its price for the caller's workspace, in credits.")
    defaults = serializers.DictField(
        help_text="The value of each parameter a job leaves out (those that have one)."
    )
    output_size = OutputSizeSerializer(
        allow_null=True, help_text="The size of its images with the defaults; null if it varies."
    )
    params_schema = serializers.DictField(
        help_text="Its parameters as a JSON Schema (2020-12): types, ranges, required ones."
    )


class ModelResolveSerializer(serializers.Serializer[Any]):
    model = serializers.CharField(help_text="The model's slug.")
    params = serializers.DictField(
        help_text="The parameters a job would store and send: checked, with the defaults."
    )
    output_size = OutputSizeSerializer(
        allow_null=True, help_text="The size of the image these parameters make, if known."
    )
    price = serializers.IntegerField(
        required=False, help_text="Credits a job with these parameters would hold."
    )
    balance = serializers.IntegerField(
        required=False, help_text="Credits the workspace has available."
    )
    enough_credits = serializers.BooleanField(
        required=False, help_text="Whether `balance` pays for `price`."
    )


@extend_schema(
    operation_id="models_list",
    responses={200: page_of(CatalogModelSerializer(many=True), "CatalogModelPage"), **PROBLEMS},
    examples=[
        OpenApiExample(
            "The catalog",
            value={"next": None, "previous": None, "results": [MODEL_EXAMPLE]},
            response_only=True,
        )
    ],
)
@api_view(["GET"])
def models_list(request: Request) -> Response:
    """The catalog: every model, whether this engine can run it, its price for the
    caller's workspace, and its parameters' schema. One page holds the whole catalog:
    `next` and `previous` are always null."""
    models = _catalog(request, list(catalog.all_models()))
    return Response({"next": None, "previous": None, "results": models})


@extend_schema(
    operation_id="models_retrieve",
    responses={200: CatalogModelSerializer, **PROBLEMS},
    examples=[OpenApiExample("A model", value=MODEL_EXAMPLE, response_only=True)],
)
@api_view(["GET"])
def model_retrieve(request: Request, slug: str) -> Response:
    """A model of the catalog, as in the list: whether this engine can run it, its price
    for the caller's workspace, its defaults and its parameters' schema. An unknown
    slug answers 404 `not_found`."""
    spec = catalog.get_model(slug)
    if spec is None:
        raise NotFound(f"No model '{slug}'.")
    return Response(_catalog(request, [spec])[0])


@extend_schema(
    operation_id="models_resolve",
    # JSON only: a form cannot carry typed parameters, and the view refuses one.
    request={"application/json": ModelResolveRequestSerializer},
    responses={200: ModelResolveSerializer, **PROBLEMS},
    examples=[
        OpenApiExample(
            "A grey background",
            value={"params": {"background_color": "#EEEEEE"}},
            request_only=True,
        ),
        OpenApiExample(
            "What a job would run with",
            value={
                "model": "bria-product-packshot",
                "params": {
                    "background_color": "#EEEEEE",
                    "content_moderation": True,
                    "force_rmbg": False,
                },
                "output_size": None,
                "price": 4,
                "balance": 100,
                "enough_credits": True,
            },
            response_only=True,
        ),
    ],
)
@api_view(["POST"])
def model_resolve(request: Request, slug: str) -> Response:
    """Check parameters for a model and return what a job would store and send.

    The same validator as job submission: unknown names, wrong types and broken rules are
    refused (400, each error naming its field); missing optional parameters take their
    defaults; a seed of -1 is drawn. The product photo may be left out.
    """
    spec = catalog.get_model(slug)
    if spec is None:
        raise NotFound(f"No model '{slug}'.")
    if not isinstance(request.data, dict):
        raise Problem(
            "validation_error", "params: send a JSON object.", errors={"params": "not an object"}
        )
    given = request.data.get("params", request.data)
    if not isinstance(given, dict):
        raise Problem(
            "validation_error",
            "params: must be a JSON object.",
            errors={"params": "must be a JSON object"},
        )
    try:
        params = catalog.resolve_params(spec, given, attached=frozenset(spec.input_image_params))
    except catalog.ParamsError as e:
        raise Problem(e.code, e.message, errors=e.errors) from e
    size = spec.output_size(params)
    data: dict[str, Any] = {
        "model": spec.slug,
        "params": params,
        "output_size": {"width": size[0], "height": size[1]} if size else None,
    }
    tenant = request_workspace(request)
    if tenant is not None:
        # What a job with these parameters would hold, and whether the workspace has it.
        quote = services.job_quote(tenant=tenant, spec=spec, params=params)
        data["price"] = quote.price
        data["balance"] = tenant.credit_balance
        data["enough_credits"] = tenant.credit_balance >= quote.price
    return Response(data)
