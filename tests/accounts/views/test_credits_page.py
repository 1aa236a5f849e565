"""The credits page: balance, the ledger with its filters, pages and CSV export, the
monthly usage per model, Segmind incidents and the low-balance threshold; each
workspace sees only its own books."""

from __future__ import annotations

import csv
import html
import io
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import CreditEntry, Tenant, User
from jobs.models import Job, ProviderIncident

# Every credit below is the test's own: the ledgers start empty.
pytestmark = pytest.mark.usefixtures("no_trial_credits")


def _url(tenant: Tenant, name: str = "credits") -> str:
    return reverse(name, args=[tenant.slug])


def _job(tenant: Tenant, model: str = "bria-product-packshot", price: int = 2) -> Job:
    return Job.objects.create(tenant=tenant, model=model, engine="segmind", price=price)


def _captured(tenant: Tenant, *, model: str, price: int, when: datetime) -> Job:
    job = _job(tenant, model, price)
    services.credits_hold(tenant=tenant, job=job, amount=price)
    capture = services.credits_capture(job=job)
    assert capture is not None
    CreditEntry.objects.filter(pk=capture.pk).update(created_at=when)
    return job


def _dated(entry: CreditEntry, when: datetime) -> None:
    # Entries are never edited by the code; a test moves one in time to filter on it.
    CreditEntry.objects.filter(pk=entry.pk).update(created_at=when)


def _csv(response) -> list[dict[str, str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_every_member_sees_the_balance_and_the_ledger_newest_first(member_client, tenant, owner):
    services.credits_grant(tenant=tenant, amount=30, user=owner, memo="first grant")
    job = _job(tenant)
    services.credits_hold(tenant=tenant, job=job, amount=2)
    page = member_client.get(_url(tenant)).content.decode()
    assert "credits to spend" in page and ">28<" in page and ">2<" in page
    job_link = reverse("job_detail", args=[tenant.slug, job.pk])
    assert page.index(job_link) < page.index("first grant")


def test_the_nav_shows_credits_with_the_balance(owner_client, tenant, owner):
    services.credits_grant(tenant=tenant, amount=42, user=owner, memo="")
    page = owner_client.get(reverse("dashboard", args=[tenant.slug])).content.decode()
    assert f'href="{_url(tenant)}"' in page
    assert '<span class="visually-hidden">balance </span>42</span>' in page


def test_the_ledger_is_filtered_by_kind(owner_client, tenant, owner):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="a grant")
    services.credits_adjust(tenant=tenant, amount=-1, user=owner, memo="an adjustment")
    page = owner_client.get(_url(tenant), {"kind": "adjustment"}).content.decode()
    assert "an adjustment" in page and "a grant" not in page


def test_the_ledger_is_filtered_by_dates_both_included(owner_client, tenant, owner):
    for day, memo in [(1, "march first"), (15, "march fifteenth"), (31, "march last")]:
        entry = services.credits_grant(tenant=tenant, amount=1, user=owner, memo=memo)
        _dated(entry, datetime(2026, 3, day, 23, 30, tzinfo=UTC))
    page = owner_client.get(
        _url(tenant), {"date_from": "2026-03-15", "date_to": "2026-03-31"}
    ).content.decode()
    assert "march fifteenth" in page and "march last" in page
    assert "march first" not in page


def test_the_ledger_is_searched_by_job_id_or_its_start(owner_client, tenant, owner):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="")
    wanted, other = _job(tenant), _job(tenant)
    for job in (wanted, other):
        services.credits_hold(tenant=tenant, job=job, amount=1)
    for search in (str(wanted.pk), str(wanted.pk)[:8], str(wanted.pk).upper()):
        page = owner_client.get(_url(tenant), {"job": search}).content.decode()
        assert reverse("job_detail", args=[tenant.slug, wanted.pk]) in page, search
        assert reverse("job_detail", args=[tenant.slug, other.pk]) not in page, search


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"date_from": "31/02/2026"}, "date_from", "Enter a valid date"),
        ({"job": "not a job; drop table"}, "job", "job: enter a job id"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to", "date_to: must be on"),
        ({"kind": "gift"}, "kind", "Select a valid choice"),
    ],
)
def test_a_bad_filter_is_named_and_kept_and_the_others_still_apply(
    owner_client, tenant, owner, params, field, message
):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="a grant")
    services.credits_adjust(tenant=tenant, amount=-1, user=owner, memo="an adjustment")
    response = owner_client.get(_url(tenant), {**params, "memo": "x"})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="id_{field}-error"' in page and message in page
    assert "an adjustment" in page  # nothing hidden by the filter that could not apply
    bad = owner_client.get(_url(tenant, "credits_export"), params)
    assert bad.status_code == 400
    assert message in bad.content.decode()


def test_the_ledger_is_paginated_and_pages_keep_the_filters(owner_client, tenant, owner):
    for n in range(30):
        services.credits_grant(tenant=tenant, amount=1, user=owner, memo=f"grant number {n}")
    first = owner_client.get(_url(tenant), {"kind": "grant"}).content.decode()
    assert first.count("grant number") == 25
    assert "grant number 29" in first and "grant number 4<" not in first
    assert "?kind=grant&amp;page=2" in first
    second = owner_client.get(_url(tenant), {"kind": "grant", "page": 2}).content.decode()
    assert second.count("grant number") == 5
    assert "grant number 0<" in second
    assert "Page 2 of 2" in second
    assert owner_client.get(_url(tenant), {"page": "999"}).status_code == 200


def test_the_csv_export_has_every_column_of_the_filtered_ledger(owner_client, tenant, owner):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="=HYPERLINK(evil)")
    job = _job(tenant)
    services.credits_hold(tenant=tenant, job=job, amount=3)
    services.credits_capture(job=job)

    response = owner_client.get(_url(tenant, "credits_export"))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="{tenant.slug}-credits.csv"' in response["Content-Disposition"]
    rows = _csv(response)
    assert list(rows[0]) == [
        "date",
        "kind",
        "amount",
        "balance_after",
        "held_after",
        "job",
        "payment_ref",
        "created_by",
        "memo",
    ]
    assert [(r["kind"], r["amount"], r["balance_after"], r["held_after"]) for r in rows] == [
        ("capture", "0", "7", "0"),
        ("hold", "-3", "7", "3"),
        ("grant", "10", "10", "0"),
    ]
    assert rows[0]["job"] == str(job.pk) and rows[2]["job"] == ""
    assert rows[2]["created_by"] == owner.email
    # A memo a spreadsheet would run as a formula is written as text.
    assert rows[2]["memo"] == "'=HYPERLINK(evil)"
    assert datetime.fromisoformat(rows[0]["date"]).tzinfo is not None

    only_holds = _csv(owner_client.get(_url(tenant, "credits_export"), {"kind": "hold"}))
    assert [r["kind"] for r in only_holds] == ["hold"]


def test_the_page_links_the_export_with_the_current_filters(owner_client, tenant):
    page = owner_client.get(_url(tenant), {"kind": "hold", "page": "1"}).content.decode()
    assert f'href="{_url(tenant, "credits_export")}?kind=hold"' in page


def _month_start(n: int) -> datetime:
    """The first moment of the month `n` months before this one, in the site's time zone."""
    now = timezone.localtime()
    index = now.year * 12 + now.month - 1 - n
    return timezone.make_aware(datetime(index // 12, index % 12 + 1, 1))


def _months_ago(n: int) -> datetime:
    return _month_start(n) + timedelta(days=4, hours=12)


def test_the_monthly_summary_counts_captured_jobs_and_credits_per_model(
    owner_client, tenant, owner
):
    services.credits_grant(tenant=tenant, amount=100, user=owner, memo="")
    last_month, this_month = _months_ago(1), _month_start(0)
    for price in (2, 3):
        _captured(tenant, model="bria-product-packshot", price=price, when=last_month)
    _captured(tenant, model="ai-product-photography", price=7, when=last_month)
    _captured(tenant, model="bria-product-packshot", price=4, when=this_month)
    # Held and released jobs spent nothing.
    released = _job(tenant, price=9)
    services.credits_hold(tenant=tenant, job=released, amount=9)
    services.credits_release(job=released)
    _job(tenant, price=5)  # held nothing yet

    usage = services.credits_usage_by_month(tenant=tenant)

    assert [(u.month.month, u.model, u.jobs, u.credits) for u in usage] == [
        (this_month.month, "bria-product-packshot", 1, 4),
        (last_month.month, "ai-product-photography", 1, 7),
        (last_month.month, "bria-product-packshot", 2, 5),
    ]
    page = owner_client.get(_url(tenant)).content.decode()
    assert f"{this_month:%B %Y}" in page and f"{last_month:%B %Y}" in page
    assert "AI Product Photography" in page  # the model's title, not its slug


def test_the_summary_covers_the_last_calendar_months(tenant, owner):
    services.credits_grant(tenant=tenant, amount=100, user=owner, memo="")
    for n in range(4):
        _captured(tenant, model="bria-product-packshot", price=1, when=_months_ago(n))
    # The first moment of the month before last is in; the moment before it is out.
    _captured(tenant, model="bria-product-packshot", price=1, when=_month_start(2))
    before = _month_start(2) - timedelta(seconds=1)
    _captured(tenant, model="bria-product-packshot", price=1, when=before)
    usage = services.credits_usage_by_month(tenant=tenant, months=3)
    assert [(u.month.month, u.jobs) for u in usage] == [
        (_months_ago(0).month, 1),
        (_months_ago(1).month, 1),
        (_months_ago(2).month, 2),
    ]


def test_segmind_incidents_are_listed_with_their_job_and_no_credit_taken(owner_client, tenant):
    job = _job(tenant)
    ProviderIncident.objects.create(
        tenant=tenant,
        job=job,
        key_id="k1",
        code="provider_insufficient_credits",
        message="Segmind: insufficient credits on the account",
    )
    page = owner_client.get(_url(tenant)).content.decode()
    assert "Jobs held because the image provider was out of credit" in page
    assert "Segmind incidents" not in page
    assert "Segmind: insufficient credits on the account" in page
    assert reverse("job_detail", args=[tenant.slug, job.pk]) in page
    assert "Nothing was charged for them" in page


def test_the_page_says_so_when_no_job_was_held(owner_client, tenant):
    page = owner_client.get(_url(tenant)).content.decode()
    assert "Jobs held because the image provider was out of credit" in page
    assert "no job has had to wait for the image provider" in page


def test_an_owner_changes_the_threshold(owner_client, tenant):
    response = owner_client.post(_url(tenant, "credits_threshold"), {"low_balance_threshold": 50})
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.low_balance_threshold == 50


@pytest.mark.parametrize("value", ["-1", "lots", ""])
def test_a_bad_threshold_is_refused_naming_the_field(owner_client, tenant, value):
    before = Tenant.objects.get(pk=tenant.pk).low_balance_threshold
    response = owner_client.post(
        _url(tenant, "credits_threshold"), {"low_balance_threshold": value}, follow=True
    )
    assert "low_balance_threshold:" in response.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).low_balance_threshold == before


def test_a_member_cannot_change_the_threshold(member_client, tenant):
    page = member_client.get(_url(tenant)).content.decode()
    assert _url(tenant, "credits_threshold") not in page
    response = member_client.post(
        _url(tenant, "credits_threshold"), {"low_balance_threshold": 0}, follow=True
    )
    assert "Only owners can change the low-balance warning" in response.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).low_balance_threshold == 10


@pytest.mark.parametrize("name", ["credits", "credits_export"])
def test_an_outsider_gets_404(outsider_client, tenant, name):
    assert outsider_client.get(_url(tenant, name)).status_code == 404


def test_a_workspace_sees_only_its_own_ledger(owner_client, tenant, owner, outsider):
    other = Tenant.objects.get(memberships__user=outsider)
    services.credits_grant(tenant=other, amount=99, user=outsider, memo="the other shop's")
    other_job = _job(other)
    services.credits_hold(tenant=other, job=other_job, amount=1)
    services.credits_grant(tenant=tenant, amount=5, user=owner, memo="ours")

    page = owner_client.get(_url(tenant), {"job": str(other_job.pk)}).content.decode()
    assert "No entry matches these filters" in page
    assert reverse("job_detail", args=[tenant.slug, other_job.pk]) not in page
    page = owner_client.get(_url(tenant)).content.decode()
    assert "the other shop's" not in page and "ours" in page
    rows = _csv(owner_client.get(_url(tenant, "credits_export")))
    assert [r["memo"] for r in rows] == ["ours"]


def test_someone_elses_job_id_finds_nothing(owner_client, tenant, owner):
    services.credits_grant(tenant=tenant, amount=5, user=owner, memo="ours")
    page = owner_client.get(_url(tenant), {"job": str(uuid.uuid4())}).content.decode()
    assert "No entry matches these filters" in page


def test_an_empty_ledger_says_so(owner_client, tenant):
    assert "No entry yet" in owner_client.get(_url(tenant)).content.decode()


def test_the_date_of_an_entry_is_shown_in_the_site_time_zone(owner_client, tenant, owner, settings):
    entry = services.credits_grant(tenant=tenant, amount=1, user=owner, memo="")
    _dated(entry, datetime(2026, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=5))
    assert "Mar 1, 2026 12:05" in owner_client.get(_url(tenant)).content.decode()


def test_the_user_column_names_who_made_an_entry(owner_client, tenant, owner):
    operator = User.objects.create_superuser(email="ops@studio.test", password="x", name="Ops")
    services.credits_adjust(tenant=tenant, amount=3, user=operator, memo="goodwill")
    page = owner_client.get(_url(tenant)).content.decode()
    assert "Ops" in page and "Corrected by the operators" in page


def _rows(page: str) -> list[list[str]]:
    """The ledger's rows as the cells' text, tags and extra spaces left out."""
    body = page.split('<table class="table ledger">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    return [
        [
            html.unescape(" ".join(re.sub(r"<[^>]+>", " ", cell).split()))
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


def test_ledger_rows_say_reserved_charged_and_returned_with_plain_signs(
    owner_client, tenant, owner
):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="a welcome gift")
    made, not_made = _job(tenant, price=3), _job(tenant, price=2)
    for job in (made, not_made):
        services.credits_hold(tenant=tenant, job=job, amount=job.price)
    services.credits_capture(job=made)
    services.credits_release(job=not_made)

    rows = _rows(owner_client.get(_url(tenant)).content.decode())

    # What happened, the change to what the shop can spend, balance and reserved after.
    assert [row[1:5] for row in rows] == [
        [f"Returned: job not made {str(not_made.pk)[:8]}", "+2", "7", "0"],
        [
            f"Charged for a job {str(made.pk)[:8]} the 3 credits reserved for it are spent",
            "no change",
            "5",
            "2",
        ],
        [f"Reserved for a job {str(not_made.pk)[:8]}", "\u22122", "5", "5"],
        [f"Reserved for a job {str(made.pk)[:8]}", "\u22123", "7", "3"],
        ["Credits added", "+10", "10", "0"],
    ]
    # The ledger's own memos ("held for job …") say nothing more; a person's memo stays.
    assert [row[6] for row in rows] == ["", "", "", "", "a welcome gift"]
    page = owner_client.get(_url(tenant)).content.decode()
    for word in (">Hold<", ">Capture<", ">Release<", "held for job", "capture for job"):
        assert word not in page


def test_the_ledger_filter_offers_what_happened_in_plain_words(owner_client, tenant, owner):
    services.credits_grant(tenant=tenant, amount=10, user=owner, memo="")
    job = _job(tenant, price=3)
    services.credits_hold(tenant=tenant, job=job, amount=3)

    page = owner_client.get(_url(tenant), {"kind": "hold"}).content.decode()

    assert '<option value="hold" selected>Reserved for a job</option>' in page
    assert '<option value="capture">Charged for a job</option>' in page
    assert [row[1].split(" ")[0] for row in _rows(page)] == ["Reserved"]
