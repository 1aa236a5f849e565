"""Media on an S3-compatible object store: private objects, presigned links.

django-storages' `S3Storage` with one change: with a custom domain it would hand out plain,
unsigned links (or CloudFront-signed ones), which a private bucket refuses. Here a custom
domain is the address browsers reach the same S3 API under (a reverse proxy in front of
MinIO on a private network, say), and links are presigned for that host, so the signature
S3 checks covers the name the browser sends.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

# SigV4's longest presigned link: S3 refuses an X-Amz-Expires above a week.
PRESIGNED_MAX_SECONDS = 7 * 24 * 60 * 60


def public_endpoint(custom_domain: str, default_scheme: str = "https") -> str:
    """`media.example.com` or `http://127.0.0.1:9000` as an endpoint URL."""
    if "://" in custom_domain:
        parts = urlsplit(custom_domain)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{default_scheme}://{custom_domain.strip('/')}"


def s3_storage_options(
    *,
    bucket: str,
    endpoint_url: str,
    region: str,
    access_key_id: str,
    secret_access_key: str,
    addressing_style: str,
    custom_domain: str,
    url_ttl_seconds: int,
) -> dict[str, Any]:
    """The OPTIONS of `PrivateS3Storage` for the S3_* settings (README, "Media on S3")."""
    if url_ttl_seconds > PRESIGNED_MAX_SECONDS:
        raise ImproperlyConfigured(
            f"ASSET_URL_TTL_SECONDS must be at most {PRESIGNED_MAX_SECONDS} (a week) with "
            f"S3 media: S3 refuses presigned links that live longer, not {url_ttl_seconds}."
        )
    return {
        "bucket_name": bucket,
        "endpoint_url": endpoint_url or None,
        "region_name": region or None,
        "access_key": access_key_id,
        "secret_key": secret_access_key,
        "custom_domain": custom_domain or None,
        # Private objects: no ACL is sent, so the bucket's own (private) policy holds,
        # and every link is presigned.
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": url_ttl_seconds,
        # Names are the assets' own ids: nothing to protect by asking S3 first.
        "file_overwrite": True,
        "client_config": Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            # Checksums only where the operation needs one: several S3-compatible stores
            # refuse the CRC headers boto3 adds by default since 1.36.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    }


class PrivateS3Storage(S3Storage):
    """S3 storage whose every link is presigned, the custom domain's too."""

    def __init__(self, **options: Any) -> None:
        # Kept off the parent, whose url() would otherwise build unsigned links with it.
        self.public_domain: str = options.pop("custom_domain", None) or ""
        super().__init__(**options)
        self._signer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state["_signer"] = None
        return state

    def url(
        self,
        name: str,
        parameters: dict[str, str] | None = None,
        expire: int | None = None,
        http_method: str | None = None,
    ) -> str:
        if not self.public_domain:
            url: str = super().url(name, parameters, expire, http_method)
            return url
        params = dict(parameters or {})
        params["Bucket"] = self.bucket_name
        params["Key"] = self._normalize_name(clean_name(name))
        presigned: str = self._public_client().generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=self.querystring_expire if expire is None else expire,
            HttpMethod=http_method,
        )
        return presigned

    def _public_client(self) -> Any:
        """A client that only signs, for the public host: no request is sent through it.
        boto3's clients are thread-safe, so one serves every thread."""
        if self._signer is None:
            self._signer = self._create_session().client(
                "s3",
                region_name=self.region_name,
                endpoint_url=public_endpoint(self.public_domain),
                config=self.client_config,
            )
        return self._signer
