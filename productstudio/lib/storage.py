"""Media on an S3-compatible object store: private objects, presigned links.

django-storages' `S3Storage` with one change: with a custom domain it would hand out plain,
unsigned links (or CloudFront-signed ones), which a private bucket refuses. Here a custom
domain is the address browsers reach the same S3 API under (a reverse proxy in front of
MinIO on a private network, say), and links are presigned for that host, so the signature
S3 checks covers the name the browser sends.
"""

from __future__ import annotations

from typing import IO, Any
from urllib.parse import urlsplit

from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import Storage
from django.http import FileResponse
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
        # A file read whole (a ZIP's entry, an engine's input) is kept in memory up to
        # this size, then in a temporary file: never a whole large image per request.
        "max_memory_size": 5 * 1024 * 1024,
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


def stored_file_stream(storage: Storage, name: str) -> tuple[IO[bytes], int | None]:
    """A stored file opened for sending on, and its size when known.

    On S3 the object's body is read as it arrives (one GET, no copy on this machine
    first); elsewhere the storage's own file. FileNotFoundError when there is none."""
    if isinstance(storage, PrivateS3Storage):
        key = storage._normalize_name(clean_name(name))
        try:
            answer = storage.connection.meta.client.get_object(Bucket=storage.bucket_name, Key=key)
        except ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise FileNotFoundError(f"No stored file {name}") from e
            raise
        return answer["Body"], int(answer["ContentLength"])
    return storage.open(name, "rb"), None


def stored_file_response(
    storage: Storage,
    name: str,
    *,
    content_type: str,
    as_attachment: bool = False,
    filename: str = "",
    headers: dict[str, str] | None = None,
) -> FileResponse:
    """A stored file sent through this site, whatever the storage: the page's own origin
    (its CSP allows images from 'self' only), the session's permission checked on every
    request, the browser's cache and the file's download name as on the local disk.
    FileNotFoundError when the file is missing."""
    stream, size = stored_file_stream(storage, name)
    response = FileResponse(
        stream,
        content_type=content_type,
        as_attachment=as_attachment,
        filename=filename,
        headers=headers,
    )
    if size is not None:
        response["Content-Length"] = str(size)
    return response
