"""Helpers shared by the API's resources: the acting user, refused submissions and bad
queries as problems, and a preset named in a request."""

from typing import Any

from django.db.models import Q
from django.urls import reverse
from rest_framework.request import Request

from accounts.models import Tenant, User
from jobs import services
from jobs.models import Preset
from productstudio.lib.errors import Problem, ProblemSerializer


def _bad_query(errors: dict[str, str]) -> Problem:
    detail = "; ".join(f"{name}: {rule}" for name, rule in errors.items())
    return Problem("validation_error", detail, errors=errors)


def _empty_filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """Filters sent with no value: refused rather than read as "no filter", which a
    client building the query wrongly would never notice."""
    query = request.query_params
    return {
        name: "must not be empty" for name in names if name in query and not query[name].strip()
    }


def _user(request: Request) -> User | None:
    # A key acts for the workspace, not for a person.
    return request.user if isinstance(request.user, User) else None


def _refused(error: services.JobError, request: Request, tenant: Tenant) -> Problem:
    """A refused submission as a problem; `insufficient_credits` says where to buy."""
    if error.code == "insufficient_credits":
        buy = request.build_absolute_uri(reverse("credits", args=[tenant.slug]))
        return Problem.of(error, buy_url=buy)
    return Problem.of(error)


def _preset(tenant: Tenant, value: Any) -> Preset | None:
    """A preset named by id or slug, among the workspace's own and the system's (its own
    first, when a slug names both)."""
    if value in (None, ""):
        return None
    visible = Preset.objects.visible_to(tenant)
    text = str(value)
    # ASCII digits only: int() refuses "²", which isdigit() accepts.
    is_id = text.isascii() and text.isdigit() and len(text) < 19
    query = Q(slug=text) | Q(pk=int(text)) if is_id else Q(slug=text)
    preset = None
    # PostgreSQL refuses NUL in a query, and no slug has one.
    if "\x00" not in text:
        # Not by ordering on tenant_id: databases disagree on where NULL (system) sorts.
        preset = visible.filter(query, tenant=tenant).first() or visible.filter(query).first()
    if preset is None:
        raise Problem(
            "validation_error",
            f"preset: no preset '{text}' in this workspace.",
            errors={"preset": f"no preset '{text}' in this workspace"},
        )
    return preset


FORBIDDEN = {403: ProblemSerializer}
