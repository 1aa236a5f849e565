"""The team page: members, roles, invitations (sending them and accepting them)."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import services
from accounts.decorators import workspace_view
from accounts.forms import (
    InvitationAccountForm,
    InviteForm,
    RoleForm,
)
from accounts.models import Invitation, Membership, User


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
