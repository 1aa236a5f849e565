"""Each of the five models, from the portal's form to the gallery, on the fake Segmind."""

from __future__ import annotations

import re

import pytest

from jobs import catalog
from jobs.models import AssetKind, Job, JobStatus
from tests.e2e.test_portal_flow import _assert_job_page_and_gallery_show_it, _log_in
from tests.jobs.engines.segmind.test_dispatcher import PROMPTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("model", list(PROMPTS))
def test_each_model_runs_on_segmind_from_the_portal_to_the_gallery(
    model, page, live_server, owner, tenant, fake
):
    spec = catalog.model(model)
    _log_in(page, live_server, owner.email)
    page.wait_for_url(re.compile(rf"/w/{tenant.slug}/$"))
    page.goto(f"{live_server.url}/w/{tenant.slug}/jobs/new/")
    page.get_by_label("Product image URL").fill(f"{live_server.url}/samples/mug.jpg")
    page.get_by_label(re.compile(re.escape(spec.title))).check()
    if PROMPTS[model]:
        page.locator(f'section[data-model="{model}"] details.advanced summary').click()
    for name, value in PROMPTS[model].items():
        page.locator(f"#param-{model}-{name}").fill(value)
    page.get_by_role("button", name="Submit job").click()

    page.get_by_role("link", name="Download").wait_for(timeout=30_000)
    job = Job.objects.get()
    assert (job.model, job.engine, job.status) == (model, "segmind", JobStatus.SUCCEEDED)
    output = job.assets.get(kind=AssetKind.OUTPUT)
    if size := spec.output_size(job.params):
        assert (output.width, output.height) == size
    assert fake.stats()["submissions"] == 1
    _assert_job_page_and_gallery_show_it(page, f"segmind-{model}")
