"""The new-job page and the preset form speak a shop's words: settings labelled in words
with the API's name in small print, a colour picker for colours, no SKU in a preset,
required settings outside "Advanced settings", and every sample photo as a thumbnail."""

from __future__ import annotations

import html
import io
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from jobs import samples, services
from jobs.forms import param_field_name
from jobs.models import Job, Preset
from tests.support.api_helpers import assert_problem, key_client

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"


def _page(client: Any, url: str) -> str:
    return html.unescape(client.get(url).content.decode())


def _section(page: str, model: str) -> str:
    return page.split(f'data-model="{model}"', 1)[1].split("</section>", 1)[0]


def test_the_packshot_preset_form_offers_no_sku(owner_client, tenant):
    page = _page(owner_client, reverse("preset_new", args=[tenant.slug]) + f"?model={PACKSHOT}")

    assert param_field_name(PACKSHOT, "sku") not in page
    assert param_field_name(PACKSHOT, "force_rmbg") in page


def test_a_preset_cannot_carry_a_sku(owner_client, tenant):
    response = owner_client.post(
        reverse("preset_new", args=[tenant.slug]) + f"?model={PACKSHOT}",
        {"name": "Per product", param_field_name(PACKSHOT, "sku"): "MUG-1"},
    )

    assert "it comes with each photo, not a preset" in html.unescape(response.content.decode())
    assert not Preset.objects.for_tenant(tenant).exists()


def test_a_colour_gets_a_picker_a_hex_field_and_transparent_where_allowed(owner_client, tenant):
    preset = services.preset_create(
        tenant=tenant,
        user=None,
        model=PACKSHOT,
        name="Linen",
        params={"background_color": "#F5F0E6"},
    )

    page = _page(owner_client, reverse("preset_edit", args=[tenant.slug, preset.pk]))

    field = param_field_name(PACKSHOT, "background_color")
    assert f'<input type="color" id="{field}-picker" value="#f5f0e6"' in page
    assert f'<input type="text" id="{field}" name="{field}" value="#F5F0E6"' in page
    assert f'id="{field}-transparent"' in page


def test_settings_are_labelled_in_words_with_the_api_name_in_small_print(owner_client, tenant):
    page = _page(owner_client, reverse("job_new", args=[tenant.slug]))

    field = param_field_name(PACKSHOT, "force_rmbg")
    assert (
        f'<label for="{field}" id="{field}-label">Always remove the background '
        '<code class="muted small">force_rmbg</code>'
    ) in page


def test_the_preview_sends_each_settings_label(owner_client, tenant):
    response = owner_client.post(reverse("job_preview", args=[tenant.slug]), {"model": PACKSHOT})

    labels = response.json()["labels"]
    assert labels["force_rmbg"] == "Always remove the background"
    assert labels["background_color"] == "Background colour"


def test_a_scenes_required_description_stands_outside_advanced_settings(owner_client, tenant):
    section = _section(_page(owner_client, reverse("job_new", args=[tenant.slug])), SCENE)

    before, advanced = section.split('<details class="advanced"', 1)
    prompt = f'name="{param_field_name(SCENE, "prompt")}"'
    assert prompt in before and prompt not in advanced
    assert "Scene description" in before
    assert param_field_name(SCENE, "steps") in advanced


def test_a_missing_description_is_named_in_words_beside_its_field(
    owner_client, tenant, product_jpeg
):
    response = owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {"image": SimpleUploadedFile("mug.jpg", product_jpeg), "model": SCENE},
    )

    page = html.unescape(response.content.decode())
    assert "Some settings need fixing: Scene description: is required." in page
    section = _section(page, SCENE)
    before, _ = section.split('<details class="advanced"', 1)
    assert "Scene description: is required" in before
    # Nothing wrong inside it: "Advanced settings" stays folded.
    assert '<details class="advanced">' in section


def test_every_sample_photo_is_offered_as_a_thumbnail(owner_client, tenant):
    page = _page(owner_client, reverse("job_new", args=[tenant.slug]))

    for name in samples.SAMPLE_NAMES:
        assert f'data-fill-url="http://testserver/samples/{name}.jpg"' in page
        assert f'src="/samples/thumbs/{name}.jpg"' in page
    assert len(samples.SAMPLE_NAMES) == 11


def test_a_sample_thumbnail_is_a_small_jpeg(client):
    response = client.get(reverse("sample_thumbnail", args=["white-on-white"]))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and max(image.size) == 200
    assert client.get("/samples/thumbs/nothing.jpg").status_code == 404


def test_the_api_refuses_a_preset_with_a_sku_naming_it(tenant):
    response = key_client(tenant).post(
        "/api/v1/presets",
        {"model": PACKSHOT, "name": "Per product", "params": {"sku": "MUG-1"}},
        content_type="application/json",
    )

    body = assert_problem(response, 400, "validation_error")
    assert body["errors"] == {"sku": "names one product: it comes with each photo, not a preset"}
    assert not Preset.objects.for_tenant(tenant).exists()


def test_the_new_job_page_takes_a_photos_sku_beside_it_not_among_the_settings(
    owner_client, tenant, http_server, product_jpeg
):
    page = _page(owner_client, reverse("job_new", args=[tenant.slug]))
    assert param_field_name(PACKSHOT, "sku") not in page
    assert 'name="sku"' in page
    url = http_server.route("/mug.jpg", product_jpeg, Content_Type="image/jpeg")

    owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {"image_url": url, "model": PACKSHOT, "sku": " MUG-1 "},
    )

    job = Job.objects.get()
    # Kept with the job, and sent as the packshot's own sku parameter.
    assert (job.sku, job.params["sku"]) == ("MUG-1", "MUG-1")


def test_one_sku_for_several_photos_is_refused(owner_client, tenant, http_server, product_jpeg):
    urls = [
        http_server.route(f"/mug-{n}.jpg", product_jpeg, Content_Type="image/jpeg")
        for n in range(2)
    ]

    response = owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {"image_url": "\n".join(urls), "model": PACKSHOT, "sku": "MUG-1"},
    )

    assert "give each its SKU in a CSV" in html.unescape(response.content.decode())
    assert not Job.objects.exists()


def test_each_csv_rows_sku_reaches_the_packshots_sku_parameter(
    owner_client, tenant, http_server, product_jpeg
):
    urls = [
        http_server.route(f"/mug-{n}.jpg", product_jpeg, Content_Type="image/jpeg")
        for n in range(2)
    ]
    text = f"url;sku\n{urls[0]};MUG-1\n{urls[1]};MUG-2\n"

    owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {"csv_file": SimpleUploadedFile("p.csv", text.encode()), "model": PACKSHOT},
    )

    jobs = Job.objects.order_by("created_at")
    assert [(j.sku, j.params["sku"]) for j in jobs] == [("MUG-1", "MUG-1"), ("MUG-2", "MUG-2")]


def test_a_model_without_a_sku_parameter_keeps_the_sku_on_the_job_only(
    owner_client, tenant, product_jpeg
):
    owner_client.post(
        reverse("job_new", args=[tenant.slug]),
        {
            "image": SimpleUploadedFile("mug.jpg", product_jpeg),
            "model": SCENE,
            param_field_name(SCENE, "prompt"): "A mug on oak",
            "sku": "MUG-7",
        },
    )

    job = Job.objects.get()
    assert job.sku == "MUG-7" and "sku" not in job.params
