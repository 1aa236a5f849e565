"""Forms of the account pages."""

import re
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from accounts.models import PLAIN_KINDS, SEGMIND_CUSTOM_MAX_PER_MINUTE, Role, SegmindPlan


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


class InvitationAccountForm(InvitationSignupForm):
    """The invitation page's sign-up: the account's email is the invited one, shown fixed
    (read-only, still posted so password managers keep it); any other value is refused."""

    email = forms.EmailField(
        required=False,
        help_text="The address the invitation was sent to.",
        widget=forms.EmailInput(attrs={"readonly": True, "autocomplete": "email"}),
    )
    field_order = ["email", "name", "password"]

    def __init__(self, *args: Any, invited_email: str, **kwargs: Any) -> None:
        kwargs["initial"] = {**kwargs.get("initial", {}), "email": invited_email}
        super().__init__(*args, **kwargs)
        self.invited_email = invited_email

    def clean_email(self) -> str:
        email: str = self.cleaned_data.get("email") or self.invited_email
        if email.strip().lower() != self.invited_email.strip().lower():
            raise forms.ValidationError(
                "email: this invitation is for another address; the email can't be changed."
            )
        return self.invited_email


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


class WorkspaceNameForm(forms.Form):
    name = forms.CharField(
        label="Workspace name",
        max_length=100,
        help_text="Shown in the navigation and in emails; the address of its pages stays the same.",
        error_messages={"required": "name: a workspace needs a name."},
    )


class SegmindKeyForm(forms.Form):
    segmind_key = forms.CharField(
        label="Your Segmind API key",
        max_length=200,
        strip=True,
        # Never sent back to the browser: the page shows the last four characters only.
        widget=forms.PasswordInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Checked with Segmind (at no cost) before it is saved; stored encrypted.",
    )


class SegmindPlanForm(forms.Form):
    segmind_plan = forms.ChoiceField(
        label="Your Segmind plan",
        choices=SegmindPlan.choices,
        help_text=(
            "Segmind limits each key to a number of requests a minute by plan (its docs page "
            "and its pricing page give different numbers). Jobs on your key are sent no "
            "faster than this; if Segmind refuses some anyway, they wait and go a little "
            "slower, never failing for it."
        ),
        error_messages={"invalid_choice": "segmind_plan: choose one of Segmind's plans."},
    )
    segmind_rate_limit = forms.IntegerField(
        label="Requests a minute (for another limit)",
        required=False,
        min_value=1,
        max_value=SEGMIND_CUSTOM_MAX_PER_MINUTE,
        error_messages={
            "min_value": "segmind_rate_limit: at least 1 request a minute.",
            "max_value": f"segmind_rate_limit: at most {SEGMIND_CUSTOM_MAX_PER_MINUTE}.",
            "invalid": "segmind_rate_limit: a whole number of requests a minute.",
        },
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("segmind_plan") == SegmindPlan.CUSTOM and not cleaned.get(
            "segmind_rate_limit"
        ):
            self.add_error(
                "segmind_rate_limit",
                "segmind_rate_limit: give your key's limit in requests a minute.",
            )
        return cleaned


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="Key name",
        max_length=100,
        help_text="Where the key is used, so you know which one to revoke: “Shopify sync”, “CI”.",
        error_messages={"required": "name: give the key a name."},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class DateInput(forms.DateInput):
    input_type = "date"


# A job id as shown on a job page (a UUID), or its first characters.
JOB_ID_RE = re.compile(r"^[0-9a-fA-F-]{1,36}$")


class LedgerFilterForm(forms.Form):
    """The credits page's filters (a GET form: every field optional)."""

    kind = forms.ChoiceField(
        label="What happened",
        choices=[("", "Everything"), *PLAIN_KINDS.items()],
        required=False,
    )
    date_from = forms.DateField(label="From", required=False, widget=DateInput)
    date_to = forms.DateField(label="To", required=False, widget=DateInput)
    job = forms.CharField(label="Job id", required=False, max_length=36)

    def clean_job(self) -> str:
        job: str = self.cleaned_data["job"].strip()
        if job and not JOB_ID_RE.match(job):
            raise forms.ValidationError("job: enter a job id, or its first characters.")
        return job

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, last = data.get("date_from"), data.get("date_to")
        if first and last and first > last:
            self.add_error("date_to", "date_to: must be on or after the From date.")
        return data


class ThresholdForm(forms.Form):
    low_balance_threshold = forms.IntegerField(
        label="Warn below",
        min_value=0,
        max_value=1_000_000,
        help_text="Credits. The portal shows a warning and the owners get one email when "
        "the balance falls below this; 0 turns the warning off.",
    )


class BuyForm(forms.Form):
    pack = forms.IntegerField(min_value=1)


class CreditGrantForm(forms.Form):
    """An operator's grant in the admin: credits added, and why."""

    amount = forms.IntegerField(min_value=1, help_text="Credits to add.")
    memo = forms.CharField(
        max_length=300,
        widget=forms.TextInput(attrs={"class": "vTextField", "size": 60}),
        help_text="Why: shown in the ledger to the shop and to operators.",
        error_messages={"required": "memo: say why the credits are granted."},
    )


class CreditAdjustForm(forms.Form):
    """An operator's correction in the admin, up or down."""

    amount = forms.IntegerField(
        help_text="Credits to add (positive) or take away (negative); never below zero."
    )
    memo = forms.CharField(
        max_length=300,
        widget=forms.TextInput(attrs={"class": "vTextField", "size": 60}),
        help_text="Why: shown in the ledger to the shop and to operators.",
        error_messages={"required": "memo: say why the balance is adjusted."},
    )

    def clean_amount(self) -> int:
        amount: int = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("amount: an adjustment cannot be zero.")
        return amount


class TwoFactorCodeForm(forms.Form):
    """A code from the authenticator app, or a recovery code."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}
        ),
    )


class TwoFactorOffForm(forms.Form):
    password_or_code = forms.CharField(
        label="Your password, or a code from your app",
        max_length=128,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


REASON_REQUIRED = "reason: say why (it goes in the operators' audit trail)."


class OperatorReasonForm(forms.Form):
    """The "Why" an operator gives before an admin action that changes money or a
    workspace's standing; it is kept in the audit trail."""

    reason = forms.CharField(
        label="Why",
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Kept in the operators' audit trail with your name and the time.",
        error_messages={"required": REASON_REQUIRED},
    )
