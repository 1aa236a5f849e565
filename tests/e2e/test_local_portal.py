"""The four models the local engine runs, from the portal's form to the gallery, with no
Segmind key: each with one of its system presets, as a shop would start."""

from __future__ import annotations

import re

import pytest

from jobs import catalog
from jobs.models import AssetKind, Job, JobStatus, Preset
from tests.e2e.test_portal_flow import _assert_job_page_and_gallery_show_it, _log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRESETS = {
    "ai-product-photography": "aipp-marble-kitchen",
    "segmind-scenecraft-v01": "scene-living-room-banner",
    "qwen-image-edit-plus-product-photography": "qwen-outdoor-daylight",
    "bria-product-packshot": "packshot-transparent-cutout",
}


@pytest.mark.parametrize("model", list(PRESETS))
def test_each_local_model_runs_from_the_portal_with_a_preset_to_the_gallery(
    model, page, live_server, owner, tenant, settings
):
    settings.SEGMIND_API_KEY = ""
    settings.FETCH_ALLOW_PRIVATE_HOSTS = ["127.0.0.1", "localhost"]
    spec = catalog.model(model)
    preset = Preset.objects.system().get(slug=PRESETS[model])
    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")
    page.get_by_label("Product image URL").fill(f"{live_server.url}/samples/mug.jpg")
    page.get_by_label(re.compile(re.escape(spec.title))).check()
    page.locator(f"#preset-{model}").select_option(label=preset.name)
    page.get_by_role("button", name="Submit job").click()

    page.get_by_role("link", name="Download").wait_for(timeout=30_000)
    job = Job.objects.get()
    assert (job.model, job.engine, job.status) == (model, "local", JobStatus.SUCCEEDED)
    assert job.preset == preset
    output = job.assets.get(kind=AssetKind.OUTPUT)
    if size := spec.output_size(job.params):
        assert (output.width, output.height) == size
    if spec.composed_locally:
        assert job.backdrop == preset.backdrop
        page.get_by_text(re.compile("placed on the backdrop")).wait_for()
    _assert_job_page_and_gallery_show_it(page, f"local-{model}")
