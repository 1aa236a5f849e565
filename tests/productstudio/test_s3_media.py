"""Media on an S3-compatible store: the settings that select it, and the storage itself
against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.support.s3_server import S3Server
from tests.test_settings import _python, _settings_value

S3_ENV = {
    "DEBUG": "1",
    "S3_BUCKET": "shop-media",
    "S3_ACCESS_KEY_ID": "key",
    "S3_SECRET_ACCESS_KEY": "secret",
}


def test_media_stays_on_the_local_disk_without_a_bucket():
    backend = _settings_value("s.STORAGES['default']['BACKEND']", DEBUG="1")
    assert backend == "django.core.files.storage.FileSystemStorage"


def test_a_bucket_selects_private_s3_storage_whose_links_live_as_long_as_the_api_says():
    values = _settings_value(
        "s.STORAGES['default']['BACKEND'], "
        "s.STORAGES['default']['OPTIONS']['querystring_expire'], "
        "s.STORAGES['default']['OPTIONS']['querystring_auth'], "
        "s.STORAGES['default']['OPTIONS']['default_acl'], "
        "s.STORAGES['default']['OPTIONS']['client_config'].s3",
        ASSET_URL_TTL_SECONDS="900",
        S3_ADDRESSING_STYLE="virtual",
        **S3_ENV,
    )
    assert values == (
        "productstudio.lib.storage.PrivateS3Storage 900 True None {'addressing_style': 'virtual'}"
    )


def test_the_addressing_style_is_read_whatever_its_case_and_spaces():
    style = _settings_value(
        "s.STORAGES['default']['OPTIONS']['client_config'].s3",
        S3_ADDRESSING_STYLE=" Path ",
        **S3_ENV,
    )
    assert style == "{'addressing_style': 'path'}"
    # Without a bucket it is unused, and an upper-case value must not stop start-up.
    assert _settings_value("s.S3_ADDRESSING_STYLE", DEBUG="1", S3_ADDRESSING_STYLE="AUTO") == (
        "auto"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"S3_ACCESS_KEY_ID": ""}, "S3_ACCESS_KEY_ID must be set"),
        ({"S3_SECRET_ACCESS_KEY": ""}, "S3_SECRET_ACCESS_KEY must be set"),
        ({"S3_ADDRESSING_STYLE": "dns"}, "S3_ADDRESSING_STYLE must be auto, path or virtual"),
        ({"ASSET_URL_TTL_SECONDS": "604801"}, "ASSET_URL_TTL_SECONDS must be at most 604800"),
    ],
)
def test_it_refuses_to_start_with_s3_settings_it_cannot_use(env, message):
    result = _python("import productstudio.settings", **{**S3_ENV, **env})
    assert result.returncode != 0
    assert message in result.stderr


def test_boto3_never_asks_the_instance_metadata_service_for_credentials():
    value = _settings_value("__import__('os').environ['AWS_EC2_METADATA_DISABLED']", DEBUG="1")
    assert value == "true"


def test_a_file_goes_to_the_bucket_and_back_and_is_deleted(s3_media: S3Server):
    name = default_storage.save("assets/a.png", ContentFile(b"\x89PNG bytes"))
    assert s3_media.keys() == [name]
    with default_storage.open(name, "rb") as fh:
        assert fh.read() == b"\x89PNG bytes"
    default_storage.delete(name)
    assert s3_media.keys() == []


def test_the_bucket_is_private_so_an_unsigned_link_is_not_a_way_in(s3_media: S3Server):
    name = default_storage.save("assets/b.png", ContentFile(b"bytes"))
    acl = s3_media.client().get_object_acl(Bucket=s3_media.bucket, Key=name)
    public = [
        grant
        for grant in acl["Grants"]
        if grant["Grantee"].get("URI", "").endswith("/global/AllUsers")
    ]
    assert public == []


def test_a_presigned_link_lives_as_long_as_the_setting_and_serves_the_bytes(
    s3_media: S3Server, settings
):
    name = default_storage.save("assets/c.png", ContentFile(b"the bytes"))
    url = default_storage.url(name)
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(settings.ASSET_URL_TTL_SECONDS)]
    assert url.startswith(s3_media.endpoint_url + "/" + s3_media.bucket + "/")
    assert httpx.get(url).content == b"the bytes"


def test_with_a_custom_domain_links_are_presigned_for_that_host(s3_media: S3Server, settings):
    # The custom domain is where browsers reach the same S3 API: here `localhost` for the
    # endpoint's 127.0.0.1, so the link must work through it and be signed for it.
    settings.STORAGES["default"]["OPTIONS"] = {
        **settings.STORAGES["default"]["OPTIONS"],
        "custom_domain": f"http://localhost:{s3_media.port}",
    }
    settings.STORAGES = {**settings.STORAGES}
    name = default_storage.save("assets/d.png", ContentFile(b"via the domain"))
    url = default_storage.url(name, expire=60)  # type: ignore[call-arg]
    parts = urlsplit(url)
    assert parts.netloc == f"localhost:{s3_media.port}"
    assert parse_qs(parts.query)["X-Amz-Expires"] == ["60"]
    assert "X-Amz-Signature" in parse_qs(parts.query)
    assert httpx.get(url).content == b"via the domain"
