"""The new-job page: many URLs, a CSV or several files make a batch (one job per photo);
bad photos are left out and named, a batch the balance can't pay is refused before any
job exists; the parameters are sliders, selects and switches; `?from=` prefills."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import CreditEntry, Tenant
from jobs import catalog, services
from jobs.forms import param_field_name
from jobs.models import Asset, Batch, Job, JobPrice

# Every credit below is the test's own: the ledgers start empty.
pytestmark = pytest.mark.usefixtures("no_trial_credits")

PACKSHOT = "bria-product-packshot"
SCENE = "ai-product-photography"


def _new(tenant: Tenant) -> str:
    return reverse("job_new", args=[tenant.slug])


def _text(response: Any) -> str:
    return response.content.decode()


def _messages(client: Client, response: Any) -> str:
    """The page a redirect leads to, with the messages it shows."""
    return _text(client.get(response["Location"]))


def _photos(http_server: Any, product_jpeg: bytes, count: int) -> list[str]:
    return [
        http_server.route(f"/mug-{n}.jpg", product_jpeg, Content_Type="image/jpeg")
        for n in range(count)
    ]


def _jpeg(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def _input_name(job: Job) -> str:
    assert job.input_asset is not None
    return job.input_asset.original_name


def _assert_nothing_created() -> None:
    assert not Batch.objects.exists()
    assert not Job.objects.exists()
    assert not Asset.objects.exists()
    assert not CreditEntry.objects.filter(kind="hold").exists()


def test_several_pasted_urls_make_a_batch_with_one_job_each(
    owner_client, owner, tenant, http_server, product_jpeg
):
    urls = _photos(http_server, product_jpeg, 3)

    response = owner_client.post(
        _new(tenant), {"image_url": "\n".join(urls) + "\n\n", "model": PACKSHOT}
    )

    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("batch_detail", args=[tenant.slug, batch.id])
    jobs = list(batch.jobs.order_by("created_at"))
    assert [job.source_url for job in jobs] == urls
    assert {job.tenant for job in jobs} == {tenant}
    assert {job.created_by for job in jobs} == {owner}
    assert all(job.input_asset is not None for job in jobs)
    assert "Batch submitted: 3 jobs" in _messages(owner_client, response)


def test_a_csv_with_skus_gives_each_job_its_sku(owner_client, tenant, http_server, product_jpeg):
    urls = _photos(http_server, product_jpeg, 2)
    text = f"sku,url\nMUG-1,{urls[0]}\n,,\nMUG-2,{urls[1]}\n"
    csv_file = SimpleUploadedFile("products.csv", text.encode(), content_type="text/csv")

    owner_client.post(_new(tenant), {"csv_file": csv_file, "model": PACKSHOT})

    jobs = Batch.objects.get().jobs.order_by("created_at")
    assert [(job.sku, job.source_url) for job in jobs] == [("MUG-1", urls[0]), ("MUG-2", urls[1])]


def test_a_csv_without_a_url_column_is_refused_naming_the_file(owner_client, tenant):
    csv_file = SimpleUploadedFile("products.csv", b"sku,link\nA,https://x.test/a.jpg\n")

    response = owner_client.post(_new(tenant), {"csv_file": csv_file, "model": PACKSHOT})

    assert response.status_code == 200
    assert "products.csv: the header row needs a url column" in _text(response)
    _assert_nothing_created()


def test_several_uploaded_files_make_a_batch(owner_client, tenant, product_jpeg):
    files = [_jpeg("mug.jpg", product_jpeg), _jpeg("cup.jpg", product_jpeg)]

    response = owner_client.post(_new(tenant), {"image": files, "model": PACKSHOT})

    batch = Batch.objects.get()
    assert response["Location"] == reverse("batch_detail", args=[tenant.slug, batch.id])
    names = [_input_name(job) for job in batch.jobs.order_by("created_at")]
    assert names == ["mug.jpg", "cup.jpg"]


def test_a_bad_line_among_good_ones_is_left_out_and_named(
    owner_client, tenant, http_server, product_jpeg, settings
):
    good = _photos(http_server, product_jpeg, 2)
    missing = http_server.url("/missing.jpg")
    lines = [good[0], "not a url", missing, "http://10.0.0.8/mug.jpg", good[1]]
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]  # not 10.0.0.8

    response = owner_client.post(_new(tenant), {"image_url": "\n".join(lines), "model": PACKSHOT})

    jobs = Batch.objects.get().jobs.order_by("created_at")
    assert [job.source_url for job in jobs] == good
    page = _messages(owner_client, response)
    assert "3 photos were left out" in page
    assert "line 2: not a url: must be an http:// or https:// URL" in page
    assert f"line 3: {missing}: The server answered 404" in page
    assert "line 4: http://10.0.0.8/mug.jpg: " in page
    assert "private" in page


def test_a_file_that_is_not_an_image_is_refused_with_its_name(owner_client, tenant):
    upload = SimpleUploadedFile("photo.txt", b"just some notes", content_type="text/plain")
    other = SimpleUploadedFile("notes.txt", b"more notes", content_type="text/plain")

    response = owner_client.post(_new(tenant), {"image": [upload, other], "model": PACKSHOT})

    assert response.status_code == 200
    page = _text(response)
    assert "None of the photos could be used" in page
    assert "photo.txt: This file isn&#x27;t a picture" in page
    assert "notes.txt: " in page
    _assert_nothing_created()


def test_a_text_file_among_photos_is_left_out_and_named(owner_client, tenant, product_jpeg):
    files = [
        _jpeg("mug.jpg", product_jpeg),
        SimpleUploadedFile("photo.txt", b"just some notes", content_type="text/plain"),
    ]

    response = owner_client.post(_new(tenant), {"image": files, "model": PACKSHOT})

    job = Batch.objects.get().jobs.get()
    assert _input_name(job) == "mug.jpg"
    assert "photo.txt: This file isn&#x27;t a picture" in _messages(owner_client, response)
    assert Asset.objects.filter(original_name="photo.txt").count() == 0


def test_photos_over_the_size_limit_are_refused_with_their_names(
    owner_client, tenant, product_jpeg, settings
):
    settings.FETCH_MAX_BYTES = 1000
    files = [_jpeg("mug.jpg", product_jpeg), _jpeg("cup.jpg", product_jpeg)]

    response = owner_client.post(_new(tenant), {"image": files, "model": PACKSHOT})

    page = _text(response)
    assert "mug.jpg is larger than" in page
    assert "cup.jpg is larger than" in page
    assert "mug.jpg: mug.jpg" not in page
    _assert_nothing_created()


def test_a_batch_over_the_balance_creates_nothing_and_says_what_it_needs(
    owner_client, tenant, http_server, product_jpeg
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)
    account_services.credits_grant(tenant=tenant, amount=5, user=None, memo="test")
    urls = _photos(http_server, product_jpeg, 3)

    response = owner_client.post(_new(tenant), {"image_url": "\n".join(urls), "model": PACKSHOT})

    assert response.status_code == 200
    assert "This batch needs 6 credits; your balance is 5." in _text(response)
    assert f'href="/w/{tenant.slug}/credits/#buy"' in _text(response)
    _assert_nothing_created()
    tenant.refresh_from_db()
    assert (tenant.credit_balance, tenant.credit_held) == (5, 0)


def test_a_batch_the_balance_covers_holds_every_jobs_price(
    owner_client, tenant, http_server, product_jpeg
):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)
    account_services.credits_grant(tenant=tenant, amount=6, user=None, memo="test")
    urls = _photos(http_server, product_jpeg, 3)

    owner_client.post(_new(tenant), {"image_url": "\n".join(urls), "model": PACKSHOT})

    assert Batch.objects.get().jobs.count() == 3
    tenant.refresh_from_db()
    assert tenant.credit_balance + tenant.credit_held <= 6
    assert CreditEntry.objects.filter(kind="hold").count() == 3


def test_more_photos_than_a_batch_takes_are_refused(owner_client, tenant, settings):
    settings.BATCH_MAX_ITEMS = 2
    lines = "\n".join(f"https://shop.test/{n}.jpg" for n in range(3))

    response = owner_client.post(_new(tenant), {"image_url": lines, "model": PACKSHOT})

    assert "A batch takes at most 2 photos; you gave 3" in _text(response)
    _assert_nothing_created()


def test_a_wrong_parameter_refuses_the_batch_before_any_fetch(owner_client, tenant, http_server):
    lines = "\n".join(http_server.url(f"/{n}.jpg") for n in range(2))

    response = owner_client.post(
        _new(tenant),
        {
            "image_url": lines,
            "model": PACKSHOT,
            param_field_name(PACKSHOT, "background_color"): "pink",
        },
    )

    assert "Background colour: must be &#x27;transparent&#x27; or a hex colour" in _text(response)
    assert http_server.requests == []
    _assert_nothing_created()


def test_a_single_url_still_makes_a_plain_job(owner_client, tenant, http_server, product_jpeg):
    url = _photos(http_server, product_jpeg, 1)[0]

    response = owner_client.post(_new(tenant), {"image_url": url + "\n", "model": PACKSHOT})

    job = Job.objects.get()
    assert job.batch is None
    assert response["Location"] == reverse("job_detail", args=[tenant.slug, job.id])


def test_a_single_csv_row_makes_a_plain_job_with_its_sku(
    owner_client, tenant, http_server, product_jpeg
):
    url = _photos(http_server, product_jpeg, 1)[0]
    csv_file = SimpleUploadedFile("one.csv", f"url,sku\n{url},MUG-9\n".encode())

    owner_client.post(_new(tenant), {"csv_file": csv_file, "model": PACKSHOT})

    job = Job.objects.get()
    assert (job.batch, job.sku) == (None, "MUG-9")


def test_a_member_can_submit_a_batch(member_client, member, tenant, product_jpeg):
    files = [_jpeg("a.jpg", product_jpeg), _jpeg("b.jpg", product_jpeg)]

    member_client.post(_new(tenant), {"image": files, "model": PACKSHOT})

    assert Batch.objects.get(tenant=tenant).created_by == member


def test_the_batch_page_is_the_workspaces_own(owner_client, outsider_client, tenant, product_jpeg):
    files = [_jpeg("a.jpg", product_jpeg), _jpeg("b.jpg", product_jpeg)]
    response = owner_client.post(_new(tenant), {"image": files, "model": PACKSHOT})
    batch = Batch.objects.get()
    other = Tenant.objects.exclude(pk=tenant.pk).get()

    assert owner_client.get(response["Location"]).status_code == 200
    assert outsider_client.get(response["Location"]).status_code == 404
    own_route = reverse("batch_detail", args=[other.slug, batch.id])
    assert outsider_client.get(own_route).status_code == 404


# Prefill from a job ----------------------------------------------------------------------


def _scene_job(tenant: Tenant, owner: Any, product_jpeg: bytes) -> Job:
    return services.job_submit(
        tenant=tenant,
        user=owner,
        model=SCENE,
        upload=_jpeg("mug.jpg", product_jpeg),
        params={"prompt": "a mug on oak", "steps": 12, "x_value": 30, "seed": 77},
    )


def _value(page: str, field: str) -> str | None:
    match = re.search(rf'<input type="number" id="{re.escape(field)}"[^>]*value="([^"]*)"', page)
    return match.group(1) if match else None


def test_from_a_job_the_form_is_prefilled_with_its_model_and_choices(
    owner_client, owner, tenant, http_server, product_jpeg
):
    job = _scene_job(tenant, owner, product_jpeg)
    url = _photos(http_server, product_jpeg, 1)[0]
    Job.objects.filter(pk=job.pk).update(source_url=url)

    page = _text(owner_client.get(_new(tenant) + f"?from={job.id}"))

    assert f'value="{SCENE}" data-available="true" checked' in page
    assert url in page
    assert _value(page, param_field_name(SCENE, "steps")) == "12"
    assert _value(page, param_field_name(SCENE, "x_value")) == "30"
    assert _value(page, param_field_name(SCENE, "seed")) == "77"
    assert "a mug on oak</textarea>" in page
    # Values the job took from the defaults are left to the defaults.
    assert _value(page, param_field_name(SCENE, "y_value")) == ""
    assert "Prefilled from" in page


def test_from_a_job_with_a_drawn_seed_the_seed_is_drawn_again(
    owner_client, owner, tenant, product_jpeg
):
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model=SCENE,
        upload=_jpeg("m.jpg", product_jpeg),
        params={"prompt": "a mug"},
    )
    assert job.seed_drawn

    page = _text(owner_client.get(_new(tenant) + f"?from={job.id}"))

    assert _value(page, param_field_name(SCENE, "seed")) == ""
    assert "Its photo was uploaded" in page


def test_from_a_job_of_another_workspace_is_404(
    owner, tenant, outsider_client, outsider, product_jpeg
):
    job = _scene_job(tenant, owner, product_jpeg)
    theirs = Tenant.objects.get(memberships__user=outsider)

    assert outsider_client.get(_new(theirs) + f"?from={job.id}").status_code == 404
    assert outsider_client.get(_new(tenant) + f"?from={job.id}").status_code == 404
    assert outsider_client.get(_new(theirs) + "?from=not-a-uuid").status_code == 404


def test_a_member_can_start_from_a_job_of_the_workspace(member_client, owner, tenant, product_jpeg):
    job = _scene_job(tenant, owner, product_jpeg)

    response = member_client.get(_new(tenant) + f"?from={job.id}")

    assert response.status_code == 200
    assert _value(_text(response), param_field_name(SCENE, "steps")) == "12"


# Controls from the JSON Schema -----------------------------------------------------------


def test_bounded_numbers_get_sliders_enums_selects_and_booleans_switches(owner_client, tenant):
    page = _text(owner_client.get(_new(tenant)))

    for name in ("steps", "scale", "x_value", "y_value"):
        field = param_field_name(SCENE, name)
        slider = re.search(rf'<input type="range" id="{field}-range"[^>]*>', page)
        assert slider, f"no slider for {name}"
        assert f'data-range-for="{field}"' in slider.group(0)
        # The named number field is what is sent: empty keeps "not given" possible.
        assert f'<input type="number" id="{field}" name="{field}" value=""' in page
    scale = re.search(rf'id="{param_field_name(SCENE, "scale")}-range"[^>]*>', page)
    assert scale and 'min="0"' in scale.group(0) and 'max="1"' in scale.group(0)
    assert 'step="0.01"' in scale.group(0)
    # No range, no slider: the seed is a plain number.
    assert f'id="{param_field_name(SCENE, "seed")}-range"' not in page
    assert f'<select id="{param_field_name(SCENE, "aspect_ratio")}"' in page
    assert f'id="{param_field_name(SCENE, "aspect_ratio")}-range"' not in page
    force_rmbg = param_field_name(PACKSHOT, "force_rmbg")
    switch = f'<input type="checkbox" class="switch" role="switch" id="{force_rmbg}-switch"'
    assert switch in page
    assert f'data-unset="{force_rmbg}"' in page
    assert f'id="{param_field_name(SCENE, "prompt")}-range"' not in page


def test_the_placement_canvas_is_offered_only_for_models_placed_by_x_y_and_scale(
    owner_client, tenant
):
    page = _text(owner_client.get(_new(tenant)))

    assert f'data-placement="{SCENE}"' in page
    assert f'data-x="param-{SCENE}-x_value"' in page
    assert f'data-placement="{PACKSHOT}"' not in page


def test_the_model_cards_say_time_price_and_where_they_run(owner_client, tenant):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=3)

    page = _text(owner_client.get(_new(tenant)))

    assert "3 credits" in page
    runnable = [m for m in catalog.all_models() if m.runs_on("local")]
    assert page.count("Runs here") == len(runnable) == 4
    assert page.count("Needs Segmind</span>") == 1
    assert "Runs on the local engine, in about a second" in page


def test_the_model_cards_give_segminds_typical_time_when_jobs_run_there(
    owner_client, tenant, settings
):
    settings.SEGMIND_API_KEY = "sg_platform_key_0000"

    page = _text(owner_client.get(_new(tenant)))

    assert re.search(r"About \d+ s on Segmind", page)
    assert "Needs Segmind</span>" not in page


def test_the_preview_gives_the_total_for_every_photo(owner_client, tenant):
    JobPrice.objects.create(model=PACKSHOT, engine="local", credits=2)
    account_services.credits_grant(tenant=tenant, amount=5, user=None, memo="test")

    data = owner_client.post(
        reverse("job_preview", args=[tenant.slug]), {"model": PACKSHOT, "count": "3"}
    ).json()

    assert (data["price"], data["count"], data["total"]) == (2, 3, 6)
    assert (data["balance"], data["enough_credits"]) == (5, False)


@pytest.mark.parametrize("count", ["", "x", "-2", "0"])
def test_the_preview_counts_one_photo_for_a_count_it_cannot_read(owner_client, tenant, count):
    data = owner_client.post(
        reverse("job_preview", args=[tenant.slug]), {"model": PACKSHOT, "count": count}
    ).json()

    assert data["count"] == 1
