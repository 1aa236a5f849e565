"""The Content-Security-Policy header: pages load scripts, styles, fonts and images from
ProductStudio itself only, so nothing is fetched from another site at run time and an
injected `<script>` or `style=` does not run.

Django 5.2 has no CSP support of its own; one header from a middleware is all it takes. A
view that needs more (the Swagger UI's inline `<style>`) says so with `csp_extend`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

HEADER = "Content-Security-Policy"


def policy_render(directives: dict[str, list[str]]) -> str:
    return "; ".join(" ".join([name, *values]) for name, values in directives.items())


def csp_extend(**extra: list[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add sources to some directives for one view: `@csp_extend(style_src=["'unsafe-inline'"])`."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            response = view(request, *args, **kwargs)
            response.csp_extra = {  # type: ignore[attr-defined]
                name.replace("_", "-"): sources for name, sources in extra.items()
            }
            return response

        return wrapper

    return decorator


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response:
            return response
        directives = {name: list(sources) for name, sources in settings.CSP_DIRECTIVES.items()}
        for name, sources in getattr(response, "csp_extra", {}).items():
            # A directive the policy leaves out falls back to default-src: start from it.
            directives.setdefault(name, list(directives.get("default-src", [])))
            directives[name] += [s for s in sources if s not in directives[name]]
        response[HEADER] = policy_render(directives)
        return response
