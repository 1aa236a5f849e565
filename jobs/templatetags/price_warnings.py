"""The admin's warning while Segmind models run unpriced, at SEGMIND_DEFAULT_PRICE."""

from typing import Any

from django import template
from django.conf import settings
from django.urls import reverse

from jobs import services

register = template.Library()


@register.inclusion_tag("admin/jobs/_unpriced_models_banner.html", takes_context=True)
def unpriced_models_banner(context: template.Context) -> dict[str, Any]:
    """Every admin page names the Segmind models no operator has priced: each such job
    costs the default price, which is a guard, not a price anyone chose."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        return {"models": []}
    return {
        "models": services.prices_missing(),
        "default_price": settings.SEGMIND_DEFAULT_PRICE,
        "add_url": reverse("admin:jobs_jobprice_add"),
    }
