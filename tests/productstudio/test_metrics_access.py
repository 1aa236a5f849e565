"""/metrics is not public: off (404) with neither METRICS_TOKEN nor METRICS_ALLOW, and with
them a scrape needs the token as a Bearer header and/or a client address in the list
(behind TRUSTED_PROXY_COUNT proxies, the address the proxies saw)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

TOKEN = "scrape-me-0123456789abcdef"


def test_metrics_are_off_with_neither_a_token_nor_an_allow_list(client, db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW = []

    assert client.get("/metrics").status_code == 404


def test_a_scrape_without_the_token_or_with_a_wrong_one_is_refused(client, db, settings):
    settings.METRICS_TOKEN = TOKEN

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    basic = client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")

    assert [missing.status_code, wrong.status_code, basic.status_code] == [401, 401, 401]
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"productstudio_" not in missing.content + wrong.content + basic.content


def test_a_scrape_with_the_token_gets_prometheus_text(client, db, settings):
    settings.METRICS_TOKEN = TOKEN

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    assert "# TYPE productstudio_jobs gauge" in text
    # django-prometheus' own figures come with the studio's.
    assert "django_http_requests_before_middlewares_total" in text


def test_a_scrape_from_an_address_outside_the_allow_list_is_refused(client, db, settings):
    settings.METRICS_ALLOW = ["10.0.0.0/8", "192.168.7.4"]

    outside = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    inside = client.get("/metrics", REMOTE_ADDR="10.20.30.40")
    exact = client.get("/metrics", REMOTE_ADDR="192.168.7.4")

    assert outside.status_code == 403
    assert (inside.status_code, exact.status_code) == (200, 200)


def test_behind_a_proxy_the_allow_list_reads_the_address_the_proxy_saw(client, db, settings):
    settings.METRICS_ALLOW = ["10.0.0.0/8"]
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "172.16.0.2"

    allowed = client.get("/metrics", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="10.1.2.3")
    # What the client wrote itself (left of what the proxy appended) is not trusted.
    spoofed = client.get(
        "/metrics", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="10.1.2.3, 203.0.113.9"
    )

    assert allowed.status_code == 200
    assert spoofed.status_code == 403


def test_with_both_set_a_scrape_needs_both(client, db, settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOW = ["127.0.0.0/8"]

    no_token = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    elsewhere = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    both = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert (no_token.status_code, elsewhere.status_code, both.status_code) == (401, 403, 200)


def test_an_allow_list_entry_that_is_not_an_address_stops_start_up_naming_it():
    from productstudio.settings import _networks

    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOW: 'intranet'"):
        _networks("METRICS_ALLOW", ["10.0.0.0/8", "intranet"])


def test_an_ipv4_client_seen_by_a_dual_stack_listener_matches_its_ipv4_entry(client, db, settings):
    # gunicorn bound to `[::]` reports an IPv4 peer as an IPv4-mapped IPv6 address.
    settings.METRICS_ALLOW = ["10.0.0.0/8", "127.0.0.1"]

    mapped = client.get("/metrics", REMOTE_ADDR="::ffff:10.1.2.3")
    loopback = client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1")
    outside = client.get("/metrics", REMOTE_ADDR="::ffff:203.0.113.9")

    assert (mapped.status_code, loopback.status_code) == (200, 200)
    assert outside.status_code == 403


def test_an_ipv6_allow_list_entry_still_matches_ipv6_clients(client, db, settings):
    settings.METRICS_ALLOW = ["2001:db8::/32"]

    assert client.get("/metrics", REMOTE_ADDR="2001:db8::7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db9::7").status_code == 403
