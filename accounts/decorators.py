"""The tenant helper every workspace page goes through: a non-member gets a 404."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404

from accounts.models import Membership
from productstudio.lib.context import workspace_bind

WorkspaceView = Callable[..., HttpResponseBase]


def get_membership(request: HttpRequest, workspace: str) -> Membership:
    """The signed-in user's membership of the workspace with slug `workspace`, or 404."""
    return get_object_or_404(
        Membership.objects.select_related("tenant", "user"),
        tenant__slug=workspace,
        user_id=request.user.pk,
    )


def workspace_view(view: WorkspaceView) -> WorkspaceView:
    """Resolve the URL's `workspace` slug to the user's membership and pass it to the view.

    The view receives `membership` instead of the slug; the page remembers the workspace as
    the one to return to.
    """

    @login_required
    @wraps(view)
    def wrapper(
        request: HttpRequest, workspace: str, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        membership = get_membership(request, workspace)
        # Templates (the navigation, the workspace switcher) read it from the request.
        setattr(request, "membership", membership)  # noqa: B010
        workspace_bind(membership.tenant_id)
        if request.session.get("workspace") != membership.tenant.slug:
            # Set only when it changes: setting marks the session modified, and saving it
            # is a write (the database's one write lock on SQLite) on every page view.
            request.session["workspace"] = membership.tenant.slug
        return view(request, membership, *args, **kwargs)

    return wrapper
