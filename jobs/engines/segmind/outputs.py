"""Reading what Segmind made: every image in an `output` value (URLs, `data:` URIs,
base64 blobs, at any depth of lists, dicts and JSON-in-strings), as `Output`s."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

_MAX_DEPTH = 64
# Shorter strings are never image data; the floor keeps ids and hashes out.
_MIN_BASE64_CHARS = 64
_BASE64_TEXT = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".gif",
    ".avif",
    ".heic",
    ".tif",
    ".tiff",
    ".bmp",
)


@dataclass(frozen=True)
class Output:
    """One image Segmind made: a URL to download, or the image bytes themselves."""

    url: str | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("an Output holds exactly one of url and data")


def _parse_workflow_output(value: Any) -> Any:
    """A workflow's output is a JSON document sent as a string; the document, if it is one."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value  # a bare URL or base64 string is still worth searching
    return value


def find_outputs(value: Any) -> tuple[Output, ...]:
    """Every image in an `output` value, in order of appearance, without duplicates.

    Image-like values are http(s) URLs whose path ends in an image suffix, `data:image/`
    URIs, and base64 blobs that decode to known image bytes, found at any depth of lists,
    dicts and JSON-in-strings. Only if none is found is any http(s) URL taken: a model's
    signed media URL need not end in `.png`, but a workflow document may also carry
    links that are not its output.
    """
    found: list[Output] = []
    _walk(value, found, any_url=False, depth=0)
    if not found:
        _walk(value, found, any_url=True, depth=0)
    unique: dict[tuple[str | None, bytes | None], Output] = {}
    for output in found:
        unique.setdefault((output.url, output.data), output)
    return tuple(unique.values())


def _walk(value: Any, found: list[Output], *, any_url: bool, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                inner = json.loads(text)
            except ValueError:
                pass
            else:
                _walk(inner, found, any_url=any_url, depth=depth + 1)
                return
        output = _output_from_text(text, any_url=any_url)
        if output is not None:
            found.append(output)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, found, any_url=any_url, depth=depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, found, any_url=any_url, depth=depth + 1)


def _output_from_text(text: str, *, any_url: bool) -> Output | None:
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        if any(c.isspace() for c in text):
            return None
        try:
            path = httpx.URL(text).path.lower()
        except httpx.InvalidURL:
            return None
        if any_url or path.endswith(_IMAGE_SUFFIXES):
            return Output(url=text)
        return None
    if lowered.startswith("data:image/"):
        header, sep, payload = text.partition(",")
        if sep and ";base64" in header.lower():
            data = _b64decode(payload)
            if data:
                return Output(data=data)
        return None
    if len(text) >= _MIN_BASE64_CHARS:
        data = _b64decode(text)
        # Checking the bytes keeps long ids and hashes from passing as images.
        if data and _looks_like_image(data):
            return Output(data=data)
    return None


def _b64decode(text: str) -> bytes | None:
    packed = "".join(text.split())
    if not packed or not _BASE64_TEXT.match(packed):
        return None
    packed += "=" * (-len(packed) % 4)
    try:
        if "-" in packed or "_" in packed:
            return base64.urlsafe_b64decode(packed)
        return base64.b64decode(packed, validate=True)
    except (binascii.Error, ValueError):
        return None


def _looks_like_image(data: bytes) -> bool:
    return (
        data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a"))
        or data.startswith((b"II*\x00", b"MM\x00*"))
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or (data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis", b"heic", b"mif1"))
    )
