"""/favicon.ico answers with the studio's own icon instead of a 404 (browsers ask for it on
every page, the admin's included, which link no icon)."""

from __future__ import annotations

import io

from django.test import Client
from PIL import Image


def test_the_favicon_is_the_studios_icon_at_the_usual_sizes(client: Client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert "max-age=86400" in response["Cache-Control"]
    icon = Image.open(io.BytesIO(response.content))
    assert icon.format == "ICO"
    assert {(16, 16), (32, 32), (48, 48)} <= set(icon.info["sizes"])
    # The mark's indigo, as in static/img/favicon.svg.
    assert icon.convert("RGB").getpixel((icon.width // 2, 2)) == (0x43, 0x38, 0xCA)
