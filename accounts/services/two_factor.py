"""Two factors (django-otp): an authenticator app and recovery codes."""

from __future__ import annotations

import base64
import logging
import math
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import OperatorActionCode, User
from accounts.services.audit import operator_action_record
from productstudio.lib.errors import CodedError

logger = logging.getLogger(__name__)


# Two factors (django-otp): an authenticator app (TOTP) and single-use recovery codes ------

RECOVERY_CODE_COUNT = 10
_APP_DEVICE_NAME = "Authenticator app"
_RECOVERY_DEVICE_NAME = "Recovery codes"


class TwoFactorError(CodedError):
    """A second factor refused: wrong_code, throttled, not_started, already_on, wrong_secret,
    reason_required."""


@dataclass(frozen=True)
class TwoFactorOn:
    device: TOTPDevice
    recovery_codes: list[str]


def _code_clean(code: str) -> str:
    # People type codes with spaces and dashes, recovery codes in capitals.
    return "".join(code.split()).replace("-", "").lower()


def _throttled(device: TOTPDevice | StaticDevice) -> TwoFactorError | None:
    allowed, info = device.verify_is_allowed()
    if allowed:
        return None
    locked_until = (info or {}).get("locked_until")
    wait = 1
    if locked_until is not None:
        wait = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
    return TwoFactorError(
        "throttled",
        f"code: too many wrong codes. Wait {wait} second{'s' if wait != 1 else ''} and try again.",
    )


def two_factor_verify(*, user: User, code: str) -> TOTPDevice | StaticDevice:
    """The user's confirmed device that accepts `code`: a code from the app, or an unused
    recovery code (used up by this). Each wrong code makes the device wait longer before
    its next try (django-otp's throttling)."""
    token = _code_clean(code)
    # Six digits are the app's; recovery codes are eight letters and digits. Trying only
    # the one kind keeps a typo in one from throttling the other.
    model: type[TOTPDevice] | type[StaticDevice] = (
        TOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
    )
    refusal: TwoFactorError | None = None
    with transaction.atomic():
        devices = list(model.objects.filter(user=user, confirmed=True).select_for_update())
        for device in devices:
            refusal = _throttled(device)
            if refusal is None and token and device.verify_token(token):
                return device
    if refusal is not None and refusal.code == "throttled":
        raise refusal
    raise TwoFactorError(
        "wrong_code",
        "code: that code is not right. Enter the 6-digit code your app shows now, "
        "or one of your recovery codes.",
    )


def two_factor_setup_start(*, user: User) -> TOTPDevice:
    """A new authenticator-app secret for `user` to scan; it counts only once confirmed
    with a code from the app. Replaces a set-up that was started and not finished."""
    if user.has_two_factor():
        raise TwoFactorError("already_on", "Two-factor is already on for your account.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=_APP_DEVICE_NAME, confirmed=False)


def two_factor_setup_device(*, user: User) -> TOTPDevice | None:
    """The set-up `user` started and has not confirmed yet, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def totp_secret_base32(*, device: TOTPDevice) -> str:
    """The app's secret as people type it into an app that cannot scan."""
    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


def _recovery_codes_replace(user: User) -> list[str]:
    # The device stays (its tokens change), so a session verified with a recovery code
    # stays verified.
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=_RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


def two_factor_confirm(*, user: User, code: str) -> TwoFactorOn:
    """Turn two-factor on: the code from the app confirms the set-up; the new recovery
    codes are returned to be shown once."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.filter(user=user, confirmed=False)
            .select_for_update()
            .order_by("-pk")
            .first()
        )
        if device is None:
            raise TwoFactorError(
                "not_started", "Start the set-up again: no authenticator app is waiting."
            )
        refusal = _throttled(device)
        if refusal is None:
            if device.verify_token(_code_clean(code)):
                device.confirmed = True
                device.save(update_fields=["confirmed"])
                StaticDevice.objects.filter(user=user).delete()
                return TwoFactorOn(device=device, recovery_codes=_recovery_codes_replace(user))
            refusal = TwoFactorError(
                "wrong_code",
                "code: that code is not right. Enter the 6-digit code your app shows now "
                "(check that the phone's clock is right).",
            )
    raise refusal


def recovery_codes_regenerate(*, user: User, code: str) -> list[str]:
    """New recovery codes for `user` (the old ones stop working), given a current code
    from the app or an unused recovery code."""
    if not user.has_two_factor():
        raise TwoFactorError("not_started", "Two-factor is off for your account.")
    two_factor_verify(user=user, code=code)
    with transaction.atomic():
        return _recovery_codes_replace(user)


def recovery_codes_left(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def _two_factor_remove(user: User) -> int:
    with transaction.atomic():
        removed = TOTPDevice.objects.filter(user=user).delete()[0]
        removed += StaticDevice.objects.filter(user=user).delete()[0]
    return removed


def two_factor_disable(*, user: User, password_or_code: str) -> None:
    """Turn two-factor off for `user`, who proves it with their password or a current
    code. While the app's device is throttled, neither is tried."""
    app = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if app is None:
        raise TwoFactorError("not_started", "Two-factor is already off for your account.")
    refusal = _throttled(app)
    if refusal is not None:
        raise refusal
    if not user.check_password(password_or_code):
        try:
            two_factor_verify(user=user, code=password_or_code)
        except TwoFactorError as e:
            if e.code == "throttled":
                raise
            raise TwoFactorError(
                "wrong_secret",
                "password_or_code: that is neither your password nor a current code.",
            ) from None
    _two_factor_remove(user)
    logger.info("two-factor turned off by user %s", user.pk)


def user_two_factor_reset(*, actor: User, user: User, reason: str) -> int:
    """An operator removes `user`'s authenticator app and recovery codes (a lost phone):
    their next log-in asks for the password only. Returns how many devices went."""
    reason = reason.strip()
    if not reason:
        raise TwoFactorError("reason_required", "reason: say why (it is kept with the reset).")
    with transaction.atomic():
        removed = _two_factor_remove(user)
        operator_action_record(
            actor=actor,
            action=OperatorActionCode.TWO_FACTOR_RESET,
            target=f"user {user.email}",
            details={"devices_removed": removed},
            reason=reason,
        )
    logger.info(
        "two-factor reset for user %s by operator %s (%d devices): %s",
        user.pk,
        actor.pk,
        removed,
        reason,
    )
    return removed
