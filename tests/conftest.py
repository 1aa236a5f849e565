"""Fixtures shared by the whole suite, and the guard that keeps tests off the network.

Tests may talk to 127.0.0.0/8 and ::1 only. The guard wraps socket connects and name
lookups: a test that tries any other address fails before a packet leaves.

The same wrappers hold the house rule "no network I/O inside a database transaction": a
connect or name lookup while the code under test is inside `transaction.atomic` (the test's
own outer blocks aside) fails the test, unless it is marked
`network_in_transaction_allowed`. Connections to the database and Redis are exempt. A
request on a kept-alive connection opens no socket: clients that keep them (the S3
storage's, see tests/support/s3_media.py) call `transaction_network_check` per request.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections
from django.test import Client

from accounts import services as account_services
from accounts.models import Membership, Role, Tenant, User

PASSWORD = "correct-horse-battery-staple"

# The suite's own subprocesses (manage.py, runserver, clusters) read no .env either: the
# local settings of a checkout where `make run` ran must not change what the tests run.
os.environ["ENV_FILE"] = ""


# Shared fixtures, one module per area of the code (tests/support/).
pytest_plugins = [
    "tests.support.accounts_services",
    "tests.support.crash",
    "tests.support.jobs_api",
    "tests.support.jobs_services",
    "tests.support.s3_media",
]


class NetworkGuardError(AssertionError):
    """A test tried to reach an address outside the loopback range."""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host in {"localhost", "localhost.localdomain"}


def _check_address(family: int, address: Any) -> None:
    if family not in (socket.AF_INET, socket.AF_INET6):
        return  # Unix sockets (e.g. PostgreSQL's) stay on the machine.
    host = address[0] if isinstance(address, tuple) else str(address)
    if not _is_loopback(str(host)):
        raise NetworkGuardError(f"test tried to connect to {host!r}: only loopback is allowed")


class NetworkInTransactionError(AssertionError):
    """Code under test reached the network while inside a database transaction."""


class _TransactionGuard:
    """What the socket wrappers need to know: whether the check is on, and the test
    thread's connection (a batch's fetch threads work for a request of that thread)."""

    def __init__(self) -> None:
        self.on = False
        self.test_connection: Any = None

    def open_blocks(self) -> int:
        """Atomic blocks open by the code under test, in this thread or the test's."""
        current = connections["default"]  # this thread's (`connection` is a proxy)
        wrappers = {id(current): current}
        if self.test_connection is not None:
            wrappers[id(self.test_connection)] = self.test_connection
        return sum(
            1
            for wrapper in wrappers.values()
            for block in wrapper.atomic_blocks
            if not getattr(block, "_from_testcase", False)
        )

    def check(self, what: str, port: Any = None) -> None:
        if not self.on or (port is not None and str(port) in _infrastructure_ports()):
            return
        if self.open_blocks():
            raise NetworkInTransactionError(
                f"{what} inside a database transaction (thread {threading.current_thread().name})"
                ": network I/O must happen before or after it"
            )


_transaction_guard = _TransactionGuard()


def transaction_network_check(what: str, port: Any = None) -> None:
    """Fail the test if the code under test is inside a transaction: for clients that
    reuse kept-alive connections (boto3's), which the socket wrappers never see again."""
    _transaction_guard.check(what, port=port)


def _infrastructure_ports() -> set[str]:
    ports = {str(django_settings.DATABASES["default"].get("PORT") or "5432")}
    if getattr(django_settings, "REDIS_URL", ""):
        ports.add(str(urlsplit(django_settings.REDIS_URL).port or 6379))
    return ports


@pytest.fixture(autouse=True)
def no_network_in_transactions(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("network_in_transaction_allowed"):
        yield
        return
    _transaction_guard.on = True
    _transaction_guard.test_connection = connections["default"]
    try:
        yield
    finally:
        _transaction_guard.on = False
        _transaction_guard.test_connection = None


def _check_transaction(family: int, address: Any) -> None:
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
        _transaction_guard.check(f"connecting to {address[0]}:{address[1]}", port=address[1])


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        _check_address(self.family, address)
        _check_transaction(self.family, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check_address(self.family, address)
        _check_transaction(self.family, address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: Any) -> int:
        _check_address(self.family, args[-1])
        return real_sendto(self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # A name lookup of anything but a numeric address or localhost would ask a DNS
        # server; numeric spellings resolve locally, and the fetcher checks the result.
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback(str(name)):
            try:
                socket.inet_pton(socket.AF_INET6, str(name).strip("[]"))
            except OSError:
                try:
                    socket.inet_aton(str(name))
                except OSError:
                    raise NetworkGuardError(
                        f"test tried to resolve {name!r}: only loopback is allowed"
                    ) from None
        port = args[0] if args else kwargs.get("port")
        _transaction_guard.check(f"looking up {name!r}", port=port)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")
    settings.SEGMIND_API_KEY = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Rate-limit counters live in the cache: each test starts with none.
    cache.clear()


@pytest.fixture(autouse=True)
def _tasks_run_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """django-q2 runs tasks in the test's own process when they are enqueued."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def no_trial_credits(settings: Any) -> None:
    """New workspaces start with no credits: for tests that count every credit."""
    settings.TRIAL_CREDITS = 0


@pytest.fixture
def owner(db: None) -> User:
    user = User.objects.create_user(email="owner@shop.test", password=PASSWORD, name="Olive")
    account_services.tenant_create(name="Olive's Mugs", owner=user)
    return user


@pytest.fixture
def tenant(owner: User) -> Tenant:
    return Tenant.objects.get(memberships__user=owner)


@pytest.fixture
def member(tenant: Tenant) -> User:
    user = User.objects.create_user(email="member@shop.test", password=PASSWORD, name="Max")
    Membership.objects.create(user=user, tenant=tenant, role=Role.MEMBER)
    return user


@pytest.fixture
def outsider(db: None) -> User:
    """A user with a workspace of their own, and none of the tenant's."""
    user = User.objects.create_user(email="outsider@other.test", password=PASSWORD)
    account_services.tenant_create(name="Other Shop", owner=user)
    return user


def login_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner: User) -> Client:
    return login_client(owner)


@pytest.fixture
def member_client(member: User) -> Client:
    return login_client(member)


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    return login_client(outsider)


@pytest.fixture
def http_server(settings: Any) -> Iterator[Any]:
    """A local HTTP server, and the fetcher allowed to reach it (as in local demos)."""
    from tests.support.http_server import LocalServer

    server = LocalServer().start()
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
    yield server
    server.stop()


@pytest.fixture
def product_jpeg() -> bytes:
    from jobs import samples

    return samples.sample_jpeg_bytes("mug", width=400, height=300)
