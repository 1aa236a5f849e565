"""The autouse guard: a test can reach loopback only."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import NetworkGuardError


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
