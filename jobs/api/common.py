"""Helpers shared by the API's resources: the acting user, refused submissions and bad
queries as problems."""

from django.urls import reverse
from rest_framework.request import Request

from accounts.models import Tenant, User
from jobs import services
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


FORBIDDEN = {403: ProblemSerializer}
