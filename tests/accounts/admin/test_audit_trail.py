"""The operators' audit trail: every admin change of money or of a workspace's standing
is recorded with who, when, what and why, in the same transaction; without a reason it
is refused and nothing changes; the trail is append-only, read-only in the admin and
exported as CSV with the changelist's filters."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.models import (
    CreditEntry,
    Membership,
    OperatorAction,
    OperatorActionCode,
    OperatorActionImmutable,
    Role,
    Tenant,
    User,
)
from jobs import services
from jobs.models import Job, JobPrice, JobStatus, ProviderPause
from tests.support.two_factor import staff_login

KEY = "platform-key-0001"


def admin_login(user: User) -> Client:
    """The one way these tests sign an operator in to the admin: with the second factor
    passed, as the admin requires."""
    return staff_login(Client(), user)


@pytest.fixture
def operator(db: None) -> User:
    return User.objects.create_superuser(email="ops@studio.test", password="x")


@pytest.fixture
def operator_client(operator: User) -> Client:
    return admin_login(operator)


def _balance(tenant: Tenant) -> int:
    tenant.refresh_from_db()
    return tenant.credit_balance


def _only_row() -> OperatorAction:
    assert OperatorAction.objects.count() == 1
    row = OperatorAction.objects.get()
    assert timezone.now() - row.at < timedelta(minutes=5)
    return row


def _grant_url(tenant: Tenant) -> str:
    return reverse("admin:accounts_tenant_credits_grant", args=[tenant.pk])


def _adjust_url(tenant: Tenant) -> str:
    return reverse("admin:accounts_tenant_credits_adjust", args=[tenant.pk])


# -- each operation records one row ------------------------------------------------------


def test_a_credit_grant_records_who_what_why_and_the_exact_amounts(
    operator_client, operator, tenant
):
    before = _balance(tenant)

    operator_client.post(_grant_url(tenant), {"amount": "40", "memo": "invoice 2026-031 paid"})

    row = _only_row()
    entry = CreditEntry.objects.for_tenant(tenant).first()
    assert entry is not None
    assert (row.actor, row.actor_email, row.action) == (
        operator,
        "ops@studio.test",
        OperatorActionCode.CREDITS_GRANT,
    )
    assert (row.tenant, row.tenant_name, row.tenant_slug) == (tenant, tenant.name, tenant.slug)
    assert row.reason == "invoice 2026-031 paid"
    assert row.details == {
        "amount": 40,
        "balance_before": before,
        "balance_after": before + 40,
        "credit_entry": entry.pk,
    }


def test_an_adjustment_down_records_the_negative_amount(operator_client, tenant):
    before = _balance(tenant)

    operator_client.post(_adjust_url(tenant), {"amount": "-3", "memo": "double grant"})

    row = _only_row()
    assert row.action == OperatorActionCode.CREDITS_ADJUST
    assert (row.details["amount"], row.details["balance_after"]) == (-3, before - 3)
    assert row.reason == "double grant"


@pytest.mark.parametrize("url", [_grant_url, _adjust_url], ids=["grant", "adjust"])
def test_a_credit_change_without_a_reason_is_refused_and_nothing_is_written(
    operator_client, tenant, url
):
    before, entries = _balance(tenant), CreditEntry.objects.count()

    response = operator_client.post(url(tenant), {"amount": "5", "memo": "  "})

    assert response.status_code == 200
    assert "memo: say why" in response.content.decode()
    assert (_balance(tenant), CreditEntry.objects.count()) == (before, entries)
    assert not OperatorAction.objects.exists()


def test_a_refund_records_the_job_and_the_credits_given_back(
    operator_client, tenant, owner, product_jpeg
):
    JobPrice.objects.create(model="bria-product-packshot", engine="local", credits=3)
    job = services.job_submit(
        tenant=tenant,
        user=owner,
        model="bria-product-packshot",
        upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
    )
    services.job_run(job_id=job.pk)
    refund = reverse("admin:jobs_job_refund", args=[job.pk])

    operator_client.post(refund, {"memo": ""})
    assert not OperatorAction.objects.exists()
    operator_client.post(refund, {"memo": "the shop could not use it"})

    row = _only_row()
    assert (row.action, row.target, row.reason) == (
        OperatorActionCode.CREDITS_REFUND,
        f"job {job.pk}",
        "the shop could not use it",
    )
    assert row.details["amount"] == 3


@pytest.fixture
def pause(tenant: Tenant, owner: User, product_jpeg: bytes) -> ProviderPause:
    """The platform key refused twice: both jobs wait."""
    key = services.SegmindKey(key=KEY, key_id=services.segmind_key_id(KEY), tenant_id=None)
    for _ in range(2):
        job = services.job_submit(
            tenant=tenant,
            user=owner,
            model="bria-product-packshot",
            upload=SimpleUploadedFile("mug.jpg", product_jpeg, content_type="image/jpeg"),
        )
        Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, attempts=1)
        services.provider_pause_open(job_id=job.pk, key=key, provider_message="Insufficient")
    return ProviderPause.objects.get()


def test_clearing_a_pause_from_its_page_needs_a_reason_and_records_it(
    operator_client, operator, pause
):
    clear = reverse("admin:jobs_providerpause_clear", args=[pause.pk])

    refused = operator_client.post(clear, {"reason": "   "})

    assert refused.status_code == 200
    assert "reason: say why" in refused.content.decode()
    pause.refresh_from_db()
    assert pause.is_open
    assert Job.objects.filter(status=JobStatus.WAITING_FOR_PROVIDER).count() == 2
    assert not OperatorAction.objects.exists()

    operator_client.post(clear, {"reason": "topped up $50 on Segmind"})

    row = _only_row()
    assert (row.actor, row.action, row.reason) == (
        operator,
        OperatorActionCode.PAUSE_CLEAR,
        "topped up $50 on Segmind",
    )
    assert row.details["resumed_jobs"] == 2
    pause.refresh_from_db()
    assert not pause.is_open


def test_the_clear_pause_action_asks_why_before_clearing(operator_client, pause):
    changelist = reverse("admin:jobs_providerpause_changelist")
    action = {"action": "clear_and_resume", "_selected_action": [pause.pk]}

    page = operator_client.post(changelist, action)
    refused = operator_client.post(changelist, {**action, "post": "yes", "reason": ""})

    assert 'name="reason"' in page.content.decode()
    assert "reason: say why" in refused.content.decode()
    pause.refresh_from_db()
    assert pause.is_open
    assert not OperatorAction.objects.exists()

    operator_client.post(changelist, {**action, "post": "yes", "reason": "Segmind credited us"})

    assert _only_row().action == OperatorActionCode.PAUSE_CLEAR
    pause.refresh_from_db()
    assert not pause.is_open


def _membership(tenant: Tenant, user: User) -> Membership:
    return Membership.objects.get(tenant=tenant, user=user)


def test_a_role_change_in_the_admin_records_before_and_after(operator_client, tenant, member):
    membership = _membership(tenant, member)
    change = reverse("admin:accounts_membership_change", args=[membership.pk])

    refused = operator_client.post(change, {"role": Role.ADMIN, "reason": ""})
    assert "reason: say why" in refused.content.decode()
    assert _membership(tenant, member).role == Role.MEMBER
    assert not OperatorAction.objects.exists()

    operator_client.post(change, {"role": Role.ADMIN, "reason": "owner asked by phone"})

    assert _membership(tenant, member).role == Role.ADMIN
    row = _only_row()
    assert (row.action, row.tenant, row.target) == (
        OperatorActionCode.ROLE_CHANGE,
        tenant,
        "user member@shop.test",
    )
    assert row.details == {"before": Role.MEMBER, "after": Role.ADMIN}


def test_the_last_owner_cannot_be_demoted_in_the_admin(operator_client, tenant, owner):
    membership = _membership(tenant, owner)
    change = reverse("admin:accounts_membership_change", args=[membership.pk])

    response = operator_client.post(change, {"role": Role.MEMBER, "reason": "asked"})

    assert "a workspace needs an owner" in response.content.decode()
    assert _membership(tenant, owner).role == Role.OWNER
    assert not OperatorAction.objects.exists()


def test_adding_a_member_in_the_admin_is_recorded(operator_client, tenant, outsider):
    add = reverse("admin:accounts_membership_add")
    form = {"user": outsider.pk, "tenant": tenant.pk, "role": Role.OWNER}

    operator_client.post(add, form)
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()
    operator_client.post(add, {**form, "reason": "ownership transfer, ticket 812"})

    assert _membership(tenant, outsider).role == Role.OWNER
    row = _only_row()
    assert (row.action, row.details) == (OperatorActionCode.MEMBER_ADD, {"role": Role.OWNER})


def test_removing_a_member_asks_why_and_records_it(operator_client, tenant, member):
    membership = _membership(tenant, member)
    changelist = reverse("admin:accounts_membership_changelist")
    action = {"action": "remove_members", "_selected_action": [membership.pk]}

    page = operator_client.post(changelist, action)
    assert 'name="reason"' in page.content.decode()
    operator_client.post(changelist, {**action, "post": "yes", "reason": " "})
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert not OperatorAction.objects.exists()

    operator_client.post(changelist, {**action, "post": "yes", "reason": "left the company"})

    assert not Membership.objects.filter(pk=membership.pk).exists()
    row = _only_row()
    assert (row.action, row.target, row.reason) == (
        OperatorActionCode.MEMBER_REMOVE,
        "user member@shop.test",
        "left the company",
    )


def test_memberships_are_not_deleted_without_a_reason(operator_client, tenant, member):
    membership = _membership(tenant, member)
    delete = reverse("admin:accounts_membership_delete", args=[membership.pk])

    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    page = operator_client.get(reverse("admin:accounts_tenant_change", args=[tenant.pk]))
    assert 'name="memberships-0-role"' not in page.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_revoking_an_api_key_asks_why_and_records_it(operator_client, tenant):
    key = account_services.api_key_create(tenant=tenant, name="shopify").key
    changelist = reverse("admin:accounts_apikey_changelist")
    action = {"action": "revoke_keys", "_selected_action": [key.pk]}

    operator_client.post(changelist, {**action, "post": "yes", "reason": ""})
    key.refresh_from_db()
    assert key.revoked_at is None

    operator_client.post(changelist, {**action, "post": "yes", "reason": "leaked in a repo"})

    key.refresh_from_db()
    assert key.revoked_at is not None
    row = _only_row()
    assert (row.action, row.tenant, row.reason) == (
        OperatorActionCode.API_KEY_REVOKE,
        tenant,
        "leaked in a repo",
    )
    assert key.prefix in row.target
    change = reverse("admin:accounts_apikey_change", args=[key.pk])
    assert 'name="revoked_at' not in operator_client.get(change).content.decode()


def _tenant_form(tenant: Tenant, **changes: object) -> dict[str, object]:
    """The tenant's change form as the browser posts it (the members inline is read-only)."""
    owner = Membership.objects.for_tenant(tenant).get()
    return {
        "name": tenant.name,
        "slug": tenant.slug,
        "low_balance_threshold": tenant.low_balance_threshold,
        "segmind_plan": tenant.segmind_plan,
        "segmind_rate_limit": tenant.segmind_rate_limit,
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": owner.pk,
        "memberships-0-tenant": tenant.pk,
        **changes,
    }


def test_a_segmind_plan_change_needs_a_reason_and_is_recorded(operator_client, tenant):
    change = reverse("admin:accounts_tenant_change", args=[tenant.pk])
    form = _tenant_form(tenant, segmind_plan="business")
    before = tenant.segmind_plan

    refused = operator_client.post(change, form)
    assert "reason: say why" in refused.content.decode()
    tenant.refresh_from_db()
    assert tenant.segmind_plan == before

    operator_client.post(change, {**form, "reason": "upgraded their Segmind plan"})

    tenant.refresh_from_db()
    assert tenant.segmind_plan == "business"
    row = _only_row()
    assert row.action == OperatorActionCode.SEGMIND_PLAN_CHANGE
    assert row.details == {"segmind_plan": {"before": before, "after": "business"}}


def test_a_rename_needs_no_reason_and_records_nothing(operator_client, tenant):
    change = reverse("admin:accounts_tenant_change", args=[tenant.pk])
    form = _tenant_form(tenant, name="Olive's Cups")

    assert operator_client.post(change, form).status_code == 302

    tenant.refresh_from_db()
    assert tenant.name == "Olive's Cups"
    assert not OperatorAction.objects.exists()


# -- the service ---------------------------------------------------------------------------


def _record(actor: User, **overrides: object) -> OperatorAction:
    args: dict[str, object] = {
        "actor": actor,
        "action": OperatorActionCode.LOCK_LIFT,
        "target": "user x@y.test",
        "reason": "verified by phone",
    }
    return account_services.operator_action_record(**{**args, **overrides})  # type: ignore[arg-type]


def test_the_service_refuses_a_blank_reason_naming_the_field(operator):
    with pytest.raises(account_services.OperatorActionError) as e:
        _record(operator, reason="  ")
    assert e.value.code == "reason_required"
    assert e.value.message.startswith("reason:")
    assert not OperatorAction.objects.exists()


def test_the_service_refuses_floats_so_amounts_stay_exact(operator):
    with pytest.raises(account_services.OperatorActionError, match=r"details\.amount"):
        _record(operator, details={"amount": 0.1})


@pytest.mark.parametrize("code", ["lock_lift", "two_factor_reset"])
def test_other_helpers_actions_are_accepted(operator, code):
    assert _record(operator, action=code).action == code


def test_a_row_and_its_change_commit_or_roll_back_together(operator, tenant):
    before = _balance(tenant)
    with pytest.raises(account_services.OperatorActionError), transaction.atomic():
        account_services.credits_grant(tenant=tenant, amount=9, user=operator, memo="x")
        _record(operator, reason="")
    assert _balance(tenant) == before


def test_the_trail_keeps_who_and_which_workspace_after_they_are_deleted(operator, tenant):
    _record(operator, tenant=tenant)
    slug = tenant.slug

    tenant.delete()
    operator.delete()

    row = OperatorAction.objects.get()
    assert (row.actor, row.tenant) == (None, None)
    assert (row.actor_email, row.tenant_slug) == ("ops@studio.test", slug)


# -- append-only -------------------------------------------------------------------------


def test_rows_cannot_be_changed_or_deleted_through_the_orm(operator):
    row = _record(operator)

    row.reason = "something else"
    with pytest.raises(OperatorActionImmutable):
        row.save()
    with pytest.raises(OperatorActionImmutable):
        row.delete()
    with pytest.raises(OperatorActionImmutable):
        OperatorAction.objects.filter(pk=row.pk).update(reason="rewritten")
    with pytest.raises(OperatorActionImmutable):
        OperatorAction.objects.all().delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        copy = OperatorAction(pk=row.pk, actor_email="x@y.test", action="lock_lift", reason="r")
        copy.save()

    assert OperatorAction.objects.get().reason == "verified by phone"


def test_rows_are_read_only_in_the_admin_even_for_a_superuser(operator_client, operator):
    row = _record(operator)
    change = reverse("admin:accounts_operatoraction_change", args=[row.pk])
    delete = reverse("admin:accounts_operatoraction_delete", args=[row.pk])
    changelist = reverse("admin:accounts_operatoraction_changelist")

    assert operator_client.post(change, {"reason": "rewritten"}).status_code == 403
    assert operator_client.get(delete).status_code == 403
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert operator_client.get(reverse("admin:accounts_operatoraction_add")).status_code == 403
    page = operator_client.get(changelist).content.decode()
    assert "delete_selected" not in page
    assert 'name="_save"' not in operator_client.get(change).content.decode()
    assert OperatorAction.objects.get().reason == "verified by phone"


# -- listing and exporting ---------------------------------------------------------------


def _csv(response: object) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(body)))


def test_the_csv_export_streams_the_filtered_rows_with_named_columns(
    operator_client, operator, tenant, outsider
):
    other = Tenant.objects.get(memberships__user=outsider)
    _record(operator, tenant=tenant, action="credits_grant", details={"amount": 40})
    _record(operator, tenant=other, action="credits_grant", details={"amount": 7})
    _record(operator, tenant=tenant, action="pause_clear", reason="=HYPERLINK(1)")
    changelist = reverse("admin:accounts_operatoraction_changelist")
    export = reverse("admin:accounts_operatoraction_export")

    page = operator_client.get(changelist, {"action__exact": "credits_grant"})
    assert f"{export}?action__exact=credits_grant" in page.content.decode()
    response = operator_client.get(
        export, {"action__exact": "credits_grant", "tenant__id__exact": tenant.pk}
    )
    everything = _csv(operator_client.get(export))

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _csv(response)
    assert [(r["tenant_slug"], r["action"], r["amount"]) for r in rows] == [
        (tenant.slug, "credits_grant", "40")
    ]
    assert rows[0]["actor_email"] == "ops@studio.test"
    assert rows[0]["reason"] == "verified by phone"
    assert len(everything) == 3
    # A cell a spreadsheet would run as a formula is kept as text.
    assert "'=HYPERLINK(1)" in [r["reason"] for r in everything]


def test_the_trail_is_searched_and_filtered_by_actor_and_date(operator_client, operator, tenant):
    other = User.objects.create_superuser(email="ops2@studio.test", password="x")
    _record(operator, tenant=tenant, target="user needle@shop.test")
    _record(other, tenant=tenant, target="user hay@shop.test")
    changelist = reverse("admin:accounts_operatoraction_changelist")

    found = operator_client.get(changelist, {"q": "needle"}).content.decode()
    by_actor = operator_client.get(changelist, {"actor__id__exact": other.pk}).content.decode()
    today = timezone.localtime()
    by_day = operator_client.get(
        changelist, {"at__year": today.year, "at__month": today.month, "at__day": today.day}
    ).content.decode()

    assert "needle@shop.test" in found and "hay@shop.test" not in found
    assert "hay@shop.test" in by_actor and "needle@shop.test" not in by_actor
    assert "hay@shop.test" in by_day and "needle@shop.test" in by_day


@pytest.mark.parametrize("who", ["owner", "member", "outsider"])
def test_a_shop_user_cannot_see_or_export_the_trail(
    who: str, operator, tenant, request: pytest.FixtureRequest
):
    _record(operator, tenant=tenant, reason="secret reason")
    client = admin_login(request.getfixturevalue(who))

    for url in (
        reverse("admin:accounts_operatoraction_changelist"),
        reverse("admin:accounts_operatoraction_export"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]
        assert b"secret reason" not in getattr(response, "content", b"")


def test_a_staff_user_without_the_view_permission_cannot_export(operator):
    _record(operator)
    staff = User.objects.create_user(email="support@studio.test", password="x", is_staff=True)

    response = admin_login(staff).get(reverse("admin:accounts_operatoraction_export"))

    assert response.status_code == 403


# -- users' standing, deletions and prices ------------------------------------------------


def _user_form(user: User, **changes: object) -> dict[str, object]:
    """A user's change form as the browser posts it (unticked boxes are left out)."""
    user.refresh_from_db()
    form: dict[str, object] = {
        "email": user.email,
        "name": user.name,
        "date_joined_0": f"{user.date_joined:%Y-%m-%d}",
        "date_joined_1": f"{user.date_joined:%H:%M:%S}",
        "last_login_0": "",
        "last_login_1": "",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
    }
    for flag in ("is_active", "is_staff", "is_superuser"):
        if getattr(user, flag):
            form[flag] = "on"
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def _user_change(user: User) -> str:
    return reverse("admin:accounts_user_change", args=[user.pk])


def test_making_a_user_staff_needs_a_reason_and_records_before_and_after(
    operator_client, operator, member
):
    form = _user_form(member, is_staff="on")

    refused = operator_client.post(_user_change(member), form)

    assert refused.status_code == 200
    assert "reason: say why" in refused.content.decode()
    member.refresh_from_db()
    assert not member.is_staff
    assert not OperatorAction.objects.exists()

    done = operator_client.post(_user_change(member), {**form, "reason": "joined support"})

    assert done.status_code == 302
    member.refresh_from_db()
    assert member.is_staff
    row = _only_row()
    assert (row.actor, row.action, row.tenant) == (
        operator,
        OperatorActionCode.USER_STANDING_CHANGE,
        None,
    )
    assert row.target == f"user {member.email}"
    assert row.details == {"is_staff": {"before": False, "after": True}}
    assert row.reason == "joined support"


def test_a_staff_member_who_may_edit_users_cannot_raise_anyone_or_themselves(member):
    from django.contrib.auth.models import Permission

    helper = User.objects.create_user(email="support@studio.test", password="x", is_staff=True)
    helper.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_user", "change_user", "add_user"])
    )
    client = admin_login(helper)

    for user in (helper, member):
        form = _user_form(user, is_superuser="on", is_staff="on", reason="promote")
        client.post(_user_change(user), form)
        user.refresh_from_db()
        assert not user.is_superuser
    member.refresh_from_db()
    assert not member.is_staff
    page = client.get(reverse("admin:accounts_user_add")).content.decode()
    assert 'name="is_superuser"' not in page and 'name="is_staff"' not in page


def test_deactivating_a_user_is_recorded_and_refused_without_a_reason(operator_client, member):
    form = _user_form(member, is_active=None)

    assert operator_client.post(_user_change(member), form).status_code == 200
    member.refresh_from_db()
    assert member.is_active
    assert not OperatorAction.objects.exists()

    operator_client.post(_user_change(member), {**form, "reason": "left the company"})

    member.refresh_from_db()
    assert not member.is_active
    assert _only_row().details == {"is_active": {"before": True, "after": False}}


def test_group_and_permission_changes_are_recorded_by_name(operator_client, member):
    from django.contrib.auth.models import Group, Permission

    support = Group.objects.create(name="Support")
    perm = Permission.objects.get(codename="change_tenant")
    form = _user_form(member, groups=[support.pk], user_permissions=[perm.pk])

    assert operator_client.post(_user_change(member), form).status_code == 200
    assert not member.groups.exists()
    assert not member.user_permissions.exists()

    operator_client.post(_user_change(member), {**form, "reason": "covers weekends"})

    assert list(member.groups.all()) == [support]
    assert list(member.user_permissions.all()) == [perm]
    details = _only_row().details
    assert details["groups"] == {"before": [], "after": ["Support"]}
    assert details["user_permissions"] == {"before": [], "after": [str(perm)]}


def test_a_profile_edit_needs_no_reason_and_records_nothing(operator_client, member):
    response = operator_client.post(_user_change(member), _user_form(member, name="Mo"))

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.name == "Mo"
    assert not OperatorAction.objects.exists()


def _user_add() -> dict[str, str]:
    return {"email": "new@ops.test", "password1": "a-long-pass-9", "password2": "a-long-pass-9"}


def test_adding_a_superuser_needs_a_reason_and_is_recorded(operator_client, operator):
    add = reverse("admin:accounts_user_add")
    form = {**_user_add(), "is_superuser": "on"}

    refused = operator_client.post(add, form)

    assert refused.status_code == 200
    assert "reason: say why" in refused.content.decode()
    assert not User.objects.filter(email="new@ops.test").exists()
    assert not OperatorAction.objects.exists()

    assert operator_client.post(add, {**form, "reason": "new on-call"}).status_code == 302

    created = User.objects.get(email="new@ops.test")
    assert created.is_superuser and not created.is_staff
    row = _only_row()
    assert (row.actor, row.action, row.target) == (
        operator,
        OperatorActionCode.USER_STANDING_CHANGE,
        "user new@ops.test",
    )
    assert row.details == {"is_superuser": {"before": None, "after": True}}


def test_adding_a_plain_user_needs_no_reason(operator_client):
    response = operator_client.post(reverse("admin:accounts_user_add"), _user_add())

    assert response.status_code == 302
    assert not User.objects.get(email="new@ops.test").is_staff
    assert not OperatorAction.objects.exists()


@pytest.mark.parametrize("kind", ["user", "tenant"])
def test_users_and_workspaces_cannot_be_deleted_in_the_admin(operator_client, tenant, member, kind):
    obj = member if kind == "user" else tenant
    delete = reverse(f"admin:accounts_{kind}_delete", args=[obj.pk])
    changelist = reverse(f"admin:accounts_{kind}_changelist")
    change = reverse(f"admin:accounts_{kind}_change", args=[obj.pk])

    assert operator_client.get(delete).status_code == 403
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"}
    operator_client.post(changelist, bulk)
    assert "delete_selected" not in operator_client.get(changelist).content.decode()
    assert delete not in operator_client.get(change).content.decode()
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert Membership.objects.filter(user=member, tenant=tenant).exists()
    assert not OperatorAction.objects.exists()


def _price_form(price: JobPrice, **changes: object) -> dict[str, object]:
    return {
        "model": price.model,
        "engine": price.engine,
        "credits": price.credits,
        "credits_per_megapixel": price.credits_per_megapixel,
        **changes,
    }


def test_a_model_price_change_needs_a_reason_and_records_before_and_after(
    operator_client, operator
):
    price = JobPrice.objects.create(model="bria-product-packshot", engine="segmind", credits=3)
    change = reverse("admin:jobs_jobprice_change", args=[price.pk])
    form = _price_form(price, credits=5)

    refused = operator_client.post(change, form)

    assert "reason: say why" in refused.content.decode()
    price.refresh_from_db()
    assert price.credits == 3
    assert not OperatorAction.objects.exists()

    assert operator_client.post(change, {**form, "reason": "Segmind raised it"}).status_code == 302

    price.refresh_from_db()
    assert price.credits == 5
    row = _only_row()
    assert (row.actor, row.action, row.reason) == (
        operator,
        OperatorActionCode.PRICE_CHANGE,
        "Segmind raised it",
    )
    assert row.target == "price of bria-product-packshot on segmind"
    assert row.details == {"credits": {"before": 3, "after": 5}}


def test_a_new_model_price_is_recorded_and_prices_are_neither_deleted_nor_edited_in_the_list(
    operator_client,
):
    add = reverse("admin:jobs_jobprice_add")
    form = {
        "model": "ai-product-photography",
        "engine": "segmind",
        "credits": "2",
        "credits_per_megapixel": "1",
    }

    assert operator_client.post(add, form).status_code == 200
    assert not JobPrice.objects.exists()
    operator_client.post(add, {**form, "reason": "new model"})

    price = JobPrice.objects.get()
    assert _only_row().details == {
        "model": {"before": None, "after": "ai-product-photography"},
        "engine": {"before": None, "after": "segmind"},
        "credits": {"before": None, "after": 2},
        "credits_per_megapixel": {"before": None, "after": 1},
    }
    delete = reverse("admin:jobs_jobprice_delete", args=[price.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert JobPrice.objects.filter(pk=price.pk).exists()
    changelist = operator_client.get(reverse("admin:jobs_jobprice_changelist")).content.decode()
    assert 'name="form-0-credits"' not in changelist


def test_a_credit_pack_price_change_needs_a_reason_and_is_recorded(operator_client):
    from accounts.models import CreditPack

    pack = CreditPack.objects.create(name="Starter", credits=100, price_cents=1200)
    change = reverse("admin:accounts_creditpack_change", args=[pack.pk])
    form = {"name": "Starter", "credits": "100", "price_cents": "1500", "currency": "usd"}

    assert "reason: say why" in operator_client.post(change, form).content.decode()
    pack.refresh_from_db()
    assert pack.price_cents == 1200
    assert not OperatorAction.objects.exists()

    operator_client.post(change, {**form, "active": "on", "reason": "new pricing"})

    pack.refresh_from_db()
    assert pack.price_cents == 1500
    row = _only_row()
    assert row.action == OperatorActionCode.PRICE_CHANGE
    assert row.details == {"price_cents": {"before": 1200, "after": 1500}}
    assert row.target == f"credit pack {pack.pk} Starter"


def test_a_new_credit_pack_needs_a_reason(operator_client):
    from accounts.models import CreditPack

    add = reverse("admin:accounts_creditpack_add")
    form = {"name": "Pro", "credits": "500", "price_cents": "4000", "currency": "usd"}

    assert operator_client.post(add, form).status_code == 200
    assert not CreditPack.objects.exists()

    assert operator_client.post(add, {**form, "reason": "launch"}).status_code == 302

    assert CreditPack.objects.get().credits == 500
    assert _only_row().details["price_cents"] == {"before": None, "after": 4000}


def test_a_groups_permissions_change_needs_a_reason_and_the_group_is_not_deleted(
    operator_client, operator
):
    from django.contrib.auth.models import Group, Permission

    support = Group.objects.create(name="Support")
    perm = Permission.objects.get(codename="change_tenant")
    change = reverse("admin:auth_group_change", args=[support.pk])
    form = {"name": "Support", "permissions": [perm.pk]}

    assert "reason: say why" in operator_client.post(change, form).content.decode()
    assert not support.permissions.exists()
    assert not OperatorAction.objects.exists()

    operator_client.post(change, {**form, "reason": "support edits workspaces"})

    assert list(support.permissions.all()) == [perm]
    row = _only_row()
    assert (row.actor, row.action, row.target) == (
        operator,
        OperatorActionCode.USER_STANDING_CHANGE,
        "group Support",
    )
    assert row.details == {"permissions": {"before": [], "after": [str(perm)]}}
    delete = reverse("admin:auth_group_delete", args=[support.pk])
    assert operator_client.post(delete, {"post": "yes"}).status_code == 403
    assert Group.objects.filter(pk=support.pk).exists()


def test_putting_a_pack_on_sale_from_the_list_needs_no_reason_and_records_nothing(
    operator_client,
):
    from accounts.models import CreditPack

    pack = CreditPack.objects.create(name="Starter", credits=100, price_cents=1200, active=False)
    changelist = reverse("admin:accounts_creditpack_changelist")
    form = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-0-id": str(pack.pk),
        "form-0-active": "on",
        "_save": "Save",
    }

    assert operator_client.post(changelist, form).status_code == 302

    pack.refresh_from_db()
    assert pack.active
    assert not OperatorAction.objects.exists()
