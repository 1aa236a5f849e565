"""The jobs' part of the credits page (accounts' template): model names from the
catalog and the workspace's Segmind incidents (the jobs held because Segmind was out of
credit). A tag library, so accounts' view needs
nothing from jobs."""

from django import template
from django.db.models import QuerySet

from accounts.models import Tenant
from jobs.catalog import get_model
from jobs.models import ProviderIncident

register = template.Library()

INCIDENTS_SHOWN = 10


@register.filter
def model_title(model: str) -> str:
    """The catalog's title of a model id, or the id when the catalog no longer has it."""
    return spec.title if (spec := get_model(model)) else model


@register.simple_tag
def segmind_incidents(tenant: Tenant) -> QuerySet[ProviderIncident]:
    """The workspace's latest Segmind incidents, with their jobs."""
    return ProviderIncident.objects.for_tenant(tenant).select_related("job")[:INCIDENTS_SHOWN]
