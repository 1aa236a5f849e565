"""Account pages: sign-up, invitations, the team page, workspace switching, settings and
the workspace's API keys."""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import services
from accounts.decorators import workspace_view
from accounts.forms import (
    ApiKeyForm,
    InvitationAccountForm,
    InviteForm,
    RoleForm,
    SegmindKeyForm,
    SegmindPlanForm,
    SignupForm,
    WorkspaceForm,
    WorkspaceNameForm,
)
from accounts.models import ApiKey, Invitation, Membership, Tenant, ThrottleScope, User
from accounts.throttling import client_address
from jobs import services as job_services

# Sign-up and password-reset limits count requests per hour.
THROTTLE_WINDOW_SECONDS = 60 * 60


def home(request: HttpRequest) -> HttpResponse:
    """Send a signed-in user to the workspace they last used."""
    if not request.user.is_authenticated:
        return redirect("login")
    memberships = Membership.objects.filter(user_id=request.user.pk).select_related("tenant")
    last = request.session.get("workspace")
    membership = memberships.filter(tenant__slug=last).first() or memberships.first()
    if membership is None:
        return redirect("workspace_create")
    return redirect("dashboard", workspace=membership.tenant.slug)


def _minutes(seconds: int) -> str:
    minutes = max(1, -(-seconds // 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def signup(request: HttpRequest) -> HttpResponse:
    """Sign-up answers "check your email" whether or not the email has an account: the
    emailed link creates the account, so the form never tells who is already here."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wait = services.throttle_admit(
            scope=ThrottleScope.SIGNUP_ADDRESS,
            key=client_address(request),
            limit=settings.SIGNUP_ADDRESS_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        )
        if wait:
            form.add_error(
                None,
                f"Too many sign-ups from your address. Try again in {_minutes(wait)}.",
            )
            return render(request, "accounts/signup.html", {"form": form}, status=429)
        # Emails to one address are limited too, silently (the answer stays the same), so
        # sign-ups cannot flood someone's inbox.
        if not services.throttle_admit(
            scope=ThrottleScope.SIGNUP_EMAIL,
            key=form.cleaned_data["email"].strip().lower(),
            limit=settings.SIGNUP_EMAIL_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        ):
            services.signup_request(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                workspace_name=form.cleaned_data["workspace_name"],
                name=form.cleaned_data["name"],
            )
        request.session["signup_email"] = form.cleaned_data["email"].strip().lower()
        return redirect("signup_sent")
    return render(request, "accounts/signup.html", {"form": form})


def signup_sent(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/signup_sent.html",
        {
            "email": request.session.get("signup_email", "your address"),
            "hours": settings.SIGNUP_LINK_MAX_AGE_HOURS,
        },
    )


@never_cache
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The sign-up email's link: a page with one button (mail scanners that open links
    do not create accounts), whose POST creates the account and signs it in."""
    try:
        pending = services.signup_lookup(token=token)
    except services.AccountError as e:
        return render(request, "accounts/signup_confirm.html", {"error": e.message}, status=404)
    if request.method == "POST":
        try:
            user = services.signup_complete(token=token)
        except services.AccountError as e:
            return render(request, "accounts/signup_confirm.html", {"error": e.message}, status=409)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, "Welcome to ProductStudio! Your workspace is ready.")
        return redirect("home")
    return render(request, "accounts/signup_confirm.html", {"pending": pending})


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page behind the reset link; a new password also lifts the account's
    log-in lock (whoever holds the link controls the email)."""

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.login_failures_forget(email=form.user.email)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset page, limited per client address (a refusal says so) and per target
    email (silently: the page says the link is on its way, as it does for any address)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = services.throttle_admit(
            scope=ThrottleScope.RESET_ADDRESS,
            key=client_address(request),
            limit=settings.PASSWORD_RESET_ADDRESS_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        )
        if wait:
            form = self.get_form()
            form.is_valid()
            form.add_error(
                None,
                "Too many password-reset requests from your address: nothing was sent. "
                f"Try again in {_minutes(wait)}.",
            )
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        wait = services.throttle_admit(
            scope=ThrottleScope.RESET_EMAIL,
            key=form.cleaned_data["email"].strip().lower(),
            limit=settings.PASSWORD_RESET_EMAIL_LIMIT,
            window_seconds=THROTTLE_WINDOW_SECONDS,
        )
        if wait:
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


@login_required
def workspace_create(request: HttpRequest) -> HttpResponse:
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        assert request.user.is_authenticated  # narrows the type; login_required ensures it
        tenant = services.tenant_create(name=form.cleaned_data["name"], owner=request.user)
        return redirect("dashboard", workspace=tenant.slug)
    return render(request, "accounts/workspace_create.html", {"form": form})


def _invitation_invalid(request: HttpRequest, error: str) -> HttpResponse:
    return render(request, "accounts/invitation_invalid.html", {"error": error}, status=404)


def _invitation_wrong_account(request: HttpRequest, invitation: Invitation) -> HttpResponse:
    """The answer to a signed-in account that is not the invitee. It shows the invited
    address masked and neither the workspace nor the role: the account is proven not to be
    the invitee, so it learns only what it needs to switch accounts (the invitee with two
    accounts recognises the address; someone who found the link learns nothing to use)."""
    return render(
        request,
        "accounts/invitation_wrong_account.html",
        {"masked_email": invitation.masked_email, "next": request.path},
        status=403,
    )


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link of an invitation email: adds the invitee's signed-in account, or signs the
    invitee up with the invited email. Any other signed-in account is refused."""
    try:
        invitation = services.invitation_lookup(token=token)
    except services.AccountError as e:
        return _invitation_invalid(request, e.message)

    if request.user.is_authenticated:
        if not invitation.is_for(request.user):
            return _invitation_wrong_account(request, invitation)
        if request.method == "POST":
            try:
                services.invitation_accept(token=token, user=request.user)
            except services.AccountError as e:
                if e.code == "wrong_invitee":
                    return _invitation_wrong_account(request, invitation)
                return _invitation_invalid(request, e.message)
            messages.success(request, f"You joined {invitation.tenant.name}.")
            return redirect("dashboard", workspace=invitation.tenant.slug)
        return render(request, "accounts/invitation_accept.html", {"invitation": invitation})

    # Whoever holds the link unsigned-in is taken for the invitee (the link was emailed
    # to that address), as a password-reset link is.
    if User.objects.filter(email__iexact=invitation.email).exists():
        login_url = reverse("login") + "?next=" + request.path
        return render(
            request,
            "accounts/invitation_accept.html",
            {"invitation": invitation, "login_url": login_url},
        )

    form = InvitationAccountForm(request.POST or None, invited_email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_signup(
                token=token,
                password=form.cleaned_data["password"],
                name=form.cleaned_data["name"],
                email=form.cleaned_data["email"],
            )
        except services.AccountError as e:
            form.add_error(None, e.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome! You joined {invitation.tenant.name}.")
            return redirect("dashboard", workspace=invitation.tenant.slug)
    return render(
        request, "accounts/invitation_signup.html", {"invitation": invitation, "form": form}
    )


@workspace_view
def team(request: HttpRequest, membership: Membership) -> HttpResponse:
    tenant = membership.tenant
    members = Membership.objects.for_tenant(tenant).select_related("user").order_by("user__email")
    # Expired ones too: they are shown as expired, to resend or withdraw.
    invitations = (
        Invitation.objects.for_tenant(tenant).unaccepted().select_related("invited_by")
        if membership.can_manage_team
        else Invitation.objects.none()
    )
    return render(
        request,
        "accounts/team.html",
        {
            "members": members,
            "invitations": invitations,
            "invite_form": InviteForm(),
            "invitation_days": settings.INVITATION_MAX_AGE_DAYS,
            "role_choices": RoleForm.base_fields["role"].choices,  # type: ignore[attr-defined]
        },
    )


def _team_redirect(membership: Membership) -> HttpResponse:
    return redirect("team", workspace=membership.tenant.slug)


@require_POST
@workspace_view
def team_invite(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(e) for e in errors)}")
        return _team_redirect(membership)
    try:
        services.invitation_create(
            tenant=membership.tenant,
            invited_by=membership.user,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
        )
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
    return _team_redirect(membership)


@require_POST
@workspace_view
def team_change_role(request: HttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_change_role(
                tenant=membership.tenant,
                by=membership.user,
                membership_id=_member_or_404(membership, member_id),
                role=form.cleaned_data["role"],
            )
        except services.AccountError as e:
            messages.error(request, e.message)
        else:
            messages.success(request, "Role changed.")
    return _team_redirect(membership)


@require_POST
@workspace_view
def team_remove(request: HttpRequest, membership: Membership, member_id: int) -> HttpResponse:
    target_id = _member_or_404(membership, member_id)
    try:
        services.membership_remove(
            tenant=membership.tenant, by=membership.user, membership_id=target_id
        )
    except services.AccountError as e:
        messages.error(request, e.message)
        return _team_redirect(membership)
    if target_id == membership.pk:
        messages.success(request, f"You left {membership.tenant.name}.")
        return redirect("home")
    messages.success(request, "Member removed.")
    return _team_redirect(membership)


def _invitation_or_404(membership: Membership, invitation_id: int) -> int:
    """An invitation of this workspace not used yet; anything else is a 404."""
    invitations = Invitation.objects.for_tenant(membership.tenant).unaccepted()
    return get_object_or_404(invitations, pk=invitation_id).pk


@require_POST
@workspace_view
def team_revoke_invitation(
    request: HttpRequest, membership: Membership, invitation_id: int
) -> HttpResponse:
    try:
        services.invitation_revoke(
            tenant=membership.tenant,
            by=membership.user,
            invitation_id=_invitation_or_404(membership, invitation_id),
        )
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, "Invitation withdrawn: its link no longer works.")
    return _team_redirect(membership)


@require_POST
@workspace_view
def team_resend_invitation(
    request: HttpRequest, membership: Membership, invitation_id: int
) -> HttpResponse:
    try:
        invitation = services.invitation_resend(
            tenant=membership.tenant,
            by=membership.user,
            invitation_id=_invitation_or_404(membership, invitation_id),
        )
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        messages.success(
            request,
            f"Invitation sent again to {invitation.email}, with a new link "
            "(the previous one no longer works).",
        )
    return _team_redirect(membership)


def _member_or_404(membership: Membership, member_id: int) -> int:
    target = get_object_or_404(Membership.objects.for_tenant(membership.tenant), pk=member_id)
    return target.pk


@workspace_view
def workspace_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's settings: its own Segmind key (set, replaced or removed)."""
    tenant = membership.tenant
    form = SegmindKeyForm(request.POST or None)
    if request.method == "POST":
        if not membership.can_manage_team:
            messages.error(request, "Only owners and admins can change the Segmind key.")
            return redirect("workspace_settings", workspace=tenant.slug)
        if request.POST.get("action") == "remove":
            services.segmind_key_clear(tenant=tenant, by=membership.user)
            job_services.provider_pauses_stale_clear()
            messages.success(request, "Your Segmind key was removed: new jobs use ours again.")
            return redirect("workspace_settings", workspace=tenant.slug)
        if form.is_valid():
            try:
                check = services.segmind_key_set(
                    tenant=tenant, by=membership.user, key=form.cleaned_data["segmind_key"]
                )
            except services.AccountError as e:
                form.add_error("segmind_key", e.message.removeprefix("segmind_key: "))
            else:
                # Jobs waiting on the old key's empty account go now, on the new key.
                job_services.provider_pauses_stale_clear()
                messages.success(
                    request,
                    f"Segmind accepted the key ending {check.last4}: new jobs run on it.",
                )
                if check.out_of_credit:
                    messages.warning(
                        request, "Segmind says this key's account is out of credit: top it up."
                    )
                return redirect("workspace_settings", workspace=tenant.slug)
    return _settings_page(request, tenant, form=form)


def _settings_page(
    request: HttpRequest,
    tenant: Tenant,
    *,
    form: SegmindKeyForm | None = None,
    name_form: WorkspaceNameForm | None = None,
    plan_form: SegmindPlanForm | None = None,
) -> HttpResponse:
    """The settings page, with the form that was just sent (and its errors) in place."""
    return render(
        request,
        "accounts/workspace_settings.html",
        {
            "form": SegmindKeyForm() if form is None else form,
            "name_form": (
                WorkspaceNameForm(initial={"name": tenant.name}) if name_form is None else name_form
            ),
            "plan_form": _plan_form(tenant) if plan_form is None else plan_form,
            "own_key_fee": settings.SEGMIND_OWN_KEY_FEE,
        },
    )


def _plan_form(tenant: Tenant) -> SegmindPlanForm:
    return SegmindPlanForm(
        initial={
            "segmind_plan": tenant.segmind_plan,
            "segmind_rate_limit": tenant.segmind_rate_limit or None,
        }
    )


@require_POST
@workspace_view
def workspace_rename(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The settings page's name form: a new name, same URLs."""
    tenant = membership.tenant
    form = WorkspaceNameForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, tenant, name_form=form)
    try:
        services.tenant_rename(tenant=tenant, by=membership.user, name=form.cleaned_data["name"])
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, f"The workspace is now called “{tenant.name}”.")
    return redirect("workspace_settings", workspace=tenant.slug)


@require_POST
@workspace_view
def workspace_segmind_plan(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The settings page's plan form: how many requests a minute the own key may send."""
    tenant = membership.tenant
    form = SegmindPlanForm(request.POST)
    if not form.is_valid():
        return _settings_page(request, tenant, plan_form=form)
    try:
        services.tenant_segmind_plan_set(
            tenant=tenant,
            by=membership.user,
            plan=form.cleaned_data["segmind_plan"],
            per_minute=form.cleaned_data.get("segmind_rate_limit"),
        )
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        messages.success(
            request, f"Jobs on your key are now sent at up to {tenant.segmind_per_minute} a minute."
        )
    return redirect("workspace_settings", workspace=tenant.slug)


# Never cached: the response to a creation holds the new key, which exists nowhere else.
@never_cache
@workspace_view
def api_keys(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The workspace's API keys. Creating one answers the POST itself with the whole key,
    shown this once: it is neither stored nor put in a URL or a session."""
    tenant = membership.tenant
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST":
        if not membership.can_manage_team:
            messages.error(request, "Only owners and admins can create API keys.")
            return redirect("api_keys", workspace=tenant.slug)
        if form.is_valid():
            try:
                created = services.api_key_create(
                    tenant=tenant, name=form.cleaned_data["name"], created_by=membership.user
                )
            except services.AccountError as e:
                form.add_error(None, e.message)
            else:
                form = ApiKeyForm()
    keys = ApiKey.objects.for_tenant(tenant).select_related("created_by")
    return render(
        request, "accounts/api_keys.html", {"form": form, "keys": keys, "created": created}
    )


@require_POST
@workspace_view
def api_key_revoke(request: HttpRequest, membership: Membership, key_id: str) -> HttpResponse:
    tenant = membership.tenant
    key = get_object_or_404(ApiKey.objects.for_tenant(tenant), pk=key_id)
    try:
        revoked = services.api_key_revoke(tenant=tenant, key_id=key.pk, by=membership.user)
    except services.AccountError as e:
        messages.error(request, e.message)
    else:
        if revoked:
            messages.success(request, f"Key “{key.name}” revoked: it no longer works.")
    return redirect("api_keys", workspace=tenant.slug)
