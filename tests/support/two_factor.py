"""Two-factor helpers for tests: a code as the person's authenticator app would show it,
and operators logged in with their second factor passed."""

from __future__ import annotations

import time

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.models import User


def totp_code(device: TOTPDevice) -> str:
    """The code the app shows now, or for the next time step when this step's code was
    accepted already (django-otp takes each step once; its tolerance takes the next)."""
    device.refresh_from_db()
    now_t = (int(time.time()) - device.t0) // device.step + device.drift
    target = max(now_t, device.last_t + 1)
    return f"{hotp(device.bin_key, target, digits=device.digits):0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """Six digits that none of the steps the device accepts now would show."""
    device.refresh_from_db()
    now_t = (int(time.time()) - device.t0) // device.step + device.drift
    accepted = {
        f"{hotp(device.bin_key, t, digits=device.digits):0{device.digits}d}"
        for t in range(now_t - device.tolerance - 1, now_t + device.tolerance + 3)
    }
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in accepted)


def two_factor_enable(user: User) -> tuple[TOTPDevice, list[str]]:
    """Turn two-factor on for `user` the way the security page does; returns the app's
    device and the recovery codes."""
    device = services.two_factor_setup_start(user=user)
    on = services.two_factor_confirm(user=user, code=totp_code(device))
    return on.device, on.recovery_codes


def staff_login(client: Client, user: User) -> Client:
    """Log `user` in on `client` with the second factor passed this session, as the
    admin requires (two-factor is turned on first if it is off)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device, _ = two_factor_enable(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
