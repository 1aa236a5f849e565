"""The admin site, for operators who passed the second factor in this session.

Staff reach no admin page (nor `/admin/assets/<id>/`) until their session is verified
with a code from their authenticator app or a recovery code. Staff without an app are
sent to set one up first. The admin's own password form is never shown: log-in goes
through the portal's two steps, so throttling and the code step apply to operators too.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode


class StudioAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        is_verified = getattr(user, "is_verified", None)
        return bool(super().has_permission(request) and is_verified and is_verified())

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        target = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = ""
        target = target or reverse("admin:index")
        user: Any = request.user
        if not user.is_authenticated:
            return redirect_to_login(target, reverse("login"))
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("The admin is for operators.")
        if self.has_permission(request):
            return redirect(target)
        query = urlencode({"next": target})
        if user.has_two_factor():
            return redirect(f"{reverse('login_code')}?{query}")
        messages.warning(
            request,
            "Operators need two-factor: set up an authenticator app here, then open the admin.",
        )
        return redirect(f"{reverse('account_security')}?{query}")
