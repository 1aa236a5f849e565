"""A real S3 API on 127.0.0.1: moto in server mode, in a subprocess of its own.

    with S3Server() as s3:
        subprocess.run([...], env={**os.environ, **s3.env})   # S3_* for a studio process
        s3.client().list_objects_v2(Bucket=s3.bucket)          # look at what was stored

moto's server keeps its buckets in memory: each `S3Server` starts empty, with one bucket.
It answers the S3 API over HTTP as AWS does (path-style addressing here, since a bucket's
virtual host name under 127.0.0.1 does not resolve), checks nothing about signatures or
expiry, and stops with the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

ACCESS_KEY_ID = "studio-test-key"
SECRET_ACCESS_KEY = "studio-test-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """moto's S3 server on a free port of 127.0.0.1, with `bucket` created."""

    def __init__(self, bucket: str = "studio-media", *, start_timeout: float = 60.0) -> None:
        self.bucket = bucket
        self.start_timeout = start_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        fd, log = tempfile.mkstemp(prefix="moto-", suffix=".log")
        os.close(fd)
        self._log = Path(log)
        self._log_file: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The studio's S3_* variables for this server."""
        return {
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "S3_ADDRESSING_STYLE": "path",
        }

    def start(self) -> S3Server:
        self.port = _free_port()
        self._log_file = self._log.open("wb")
        env = {
            **os.environ,
            # moto's own process never reaches for real AWS either.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("moto's server exited:\n" + self.log_tail())
            try:
                httpx.get(self.endpoint_url + "/moto-api/", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        "moto's server did not answer:\n" + self.log_tail()
                    ) from None
                time.sleep(0.1)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def client(self) -> Any:
        """A boto3 client for this server (to look at or change what is stored)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def keys(self) -> list[str]:
        """Every object's key in the bucket."""
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket)
            for item in page.get("Contents", [])
        ]

    def empty(self) -> None:
        """Delete every object, so that the next test starts with an empty bucket."""
        client = self.client()
        for key in self.keys():
            client.delete_object(Bucket=self.bucket, Key=key)

    def log_tail(self, chars: int = 3000) -> str:
        return self._log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._log.unlink(missing_ok=True)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def s3_storages(server: S3Server, storages: dict[str, Any], ttl: int) -> dict[str, Any]:
    """`storages` (a STORAGES setting) with its default storage on `server`'s bucket."""
    from productstudio.lib.storage import s3_storage_options

    env = server.env
    options = s3_storage_options(
        bucket=env["S3_BUCKET"],
        endpoint_url=env["S3_ENDPOINT_URL"],
        region=env["S3_REGION"],
        access_key_id=env["S3_ACCESS_KEY_ID"],
        secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        addressing_style=env["S3_ADDRESSING_STYLE"],
        custom_domain="",
        url_ttl_seconds=ttl,
    )
    return {
        **storages,
        "default": {"BACKEND": "productstudio.lib.storage.PrivateS3Storage", "OPTIONS": options},
    }
