"""Forms of the account pages."""

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import Role


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )


class PasswordField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.PasswordInput(attrs={"autocomplete": "new-password"}))
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)


class InvitationSignupForm(forms.Form):
    """A new account's name and password (the email comes from the invitation)."""

    name = forms.CharField(label="Your name", max_length=150, required=False)
    password = PasswordField(help_text=password_validation.password_validators_help_text_html())

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class SignupForm(InvitationSignupForm):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    workspace_name = forms.CharField(
        label="Shop or workspace name", max_length=100, help_text="You can rename it later."
    )
    field_order = ["email", "name", "workspace_name", "password"]


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class WorkspaceForm(forms.Form):
    name = forms.CharField(label="Workspace name", max_length=100)


class SegmindKeyForm(forms.Form):
    segmind_key = forms.CharField(
        label="Your Segmind API key",
        max_length=200,
        strip=True,
        # Never sent back to the browser: the page shows the last four characters only.
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Checked with Segmind (at no cost) before it is saved; stored encrypted.",
    )
