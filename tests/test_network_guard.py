"""The autouse guard: a test can reach loopback only."""

from __future__ import annotations

import socket
import threading

import pytest
from django.db import transaction

from tests.conftest import NetworkGuardError, NetworkInTransactionError


def test_connecting_outside_loopback_fails_before_a_packet_leaves():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkGuardError):
            sock.connect(("10.1.2.3", 80))
    finally:
        sock.close()


def test_ipv6_outside_loopback_is_refused_too():
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkGuardError):
            sock.connect(("2001:db8::1", 443, 0, 0))
    finally:
        sock.close()


def test_a_udp_datagram_outside_loopback_is_refused():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(NetworkGuardError):
            sock.sendto(b"x", ("8.8.8.8", 53))
    finally:
        sock.close()


def test_looking_up_a_real_name_is_refused():
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("example.com", 443)


def test_loopback_is_allowed():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    client.close()
    server.close()


@pytest.mark.django_db
def test_reaching_the_network_inside_a_transaction_fails_the_test():
    with transaction.atomic():
        with pytest.raises(NetworkInTransactionError):
            socket.getaddrinfo("127.0.0.1", 80)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            with pytest.raises(NetworkInTransactionError):
                sock.connect(("127.0.0.1", 9))
        finally:
            sock.close()


@pytest.mark.django_db
def test_a_fetch_thread_working_for_a_transaction_of_the_test_thread_is_caught():
    caught: list[BaseException] = []

    def fetch() -> None:
        try:
            socket.getaddrinfo("127.0.0.1", 80)
        except NetworkInTransactionError as e:
            caught.append(e)

    with transaction.atomic():
        thread = threading.Thread(target=fetch)
        thread.start()
        thread.join()

    assert len(caught) == 1


@pytest.mark.django_db
def test_the_network_outside_a_transaction_is_allowed():
    assert socket.getaddrinfo("127.0.0.1", 80)


@pytest.mark.django_db
def test_a_storage_write_to_s3_inside_a_transaction_is_caught_before_it_is_sent(s3_media):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    # The socket wrappers alone miss a request on a kept-alive connection (real S3 keeps
    # them; moto's server closes each), and see a new one only through botocore, which
    # wraps their error in its own. The storage's client checks each request itself.
    default_storage.save("guard/before.txt", ContentFile(b"before"))
    with transaction.atomic(), pytest.raises(NetworkInTransactionError, match="PUT"):
        default_storage.save("guard/inside.txt", ContentFile(b"inside"))
    assert s3_media.keys() == ["guard/before.txt"]
