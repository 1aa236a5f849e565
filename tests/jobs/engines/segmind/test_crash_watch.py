"""The watch a starting worker runs: a successor as soon as a dead holder's lease runs out.

`services.dispatcher_watch_lease` reads the lease row until its holder renews it (alive:
nothing to do) or it runs out (dead: a successor takes over). Here the lease row drives
it: a renewal made from the watch's own sleep, or a lease that runs out a moment later.
The real-cluster runs (a whole cluster started again, one worker respawned) are in
test_crashes.py.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_q.conf import Conf

from accounts.models import Lease
from jobs import services, signals, tasks
from jobs.models import Job, JobStatus
from tests.jobs.engines.segmind.test_crash_takeover import _lease, _unsent_job


def _lease_until(seconds: float) -> None:
    Lease.objects.filter(name=services.LEASE).update(
        leased_until=timezone.now() + timedelta(seconds=seconds)
    )


def test_a_live_holder_that_renews_gets_no_dispatcher_beside_it(
    fake, tenant, owner, product_jpeg, tasks_enqueued
):
    unsent = _unsent_job(tenant, owner, product_jpeg)
    # Far from running out however slow the machine: only the renewal may end the watch.
    _lease("4242-live", 60)
    naps: list[float] = []

    def holder_renews(seconds: float) -> None:
        naps.append(seconds)
        _lease_until(services.LEASE_SECONDS)  # the holder's renewal

    assert services.dispatcher_watch_lease(sleep=holder_renews) is False

    assert len(naps) == 1  # it stopped at the renewal, not at its limit
    assert tasks_enqueued == []
    unsent.refresh_from_db()
    assert (unsent.status, unsent.crash_resubmits) == (JobStatus.RUNNING, 0)
    assert Lease.objects.get(name=services.LEASE).holder == "4242-live"


def test_a_lease_that_runs_out_while_watched_gets_one_successor(
    fake, tenant, owner, product_jpeg, tasks_enqueued
):
    unsent = _unsent_job(tenant, owner, product_jpeg)
    # The holder died a moment ago: its lease runs out in about a second.
    _lease("4242-dead", 1.0)

    assert services.dispatcher_watch_lease() is True

    assert tasks_enqueued == ["jobs.tasks.segmind_dispatch"]
    unsent.refresh_from_db()
    assert unsent.status == JobStatus.SUCCEEDED
    assert (unsent.crash_resubmits, unsent.attempts) == (1, 2)
    assert fake.stats()["submissions"] == 1
    # A second watch (two workers started at once) finds nothing left to do.
    assert services.dispatcher_watch_lease() is False
    assert tasks_enqueued == ["jobs.tasks.segmind_dispatch"]


def test_a_lease_nobody_holds_gets_a_dispatcher_at_once(
    fake, tenant, owner, product_jpeg, tasks_enqueued
):
    job = _unsent_job(tenant, owner, product_jpeg)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, started_at=None)
    _lease("", -60)

    def no_wait(seconds: float) -> None:
        raise AssertionError("it waited for a lease nobody holds")

    assert services.dispatcher_watch_lease(sleep=no_wait) is True

    assert tasks_enqueued == ["jobs.tasks.segmind_dispatch"]
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED


def test_without_segmind_work_the_watch_does_nothing(db, tasks_enqueued):
    _lease("4242-dead", 1.0)

    def no_wait(seconds: float) -> None:
        raise AssertionError("it waited with no Segmind work")

    assert services.dispatcher_watch_lease(sleep=no_wait) is False
    assert tasks_enqueued == []


def test_a_holder_that_never_renews_is_waited_for_no_longer_than_the_limit(
    fake, tenant, owner, product_jpeg, tasks_enqueued
):
    _unsent_job(tenant, owner, product_jpeg)
    _lease("4242-slow", 60)
    naps: list[float] = []

    assert services.dispatcher_watch_lease(wait_seconds=0.3, sleep=naps.append) is False
    # Without a real clock moving, it would nap forever; bounded, it gave up.
    assert naps and all(nap <= services.WATCH_POLL_SECONDS for nap in naps)
    assert tasks_enqueued == []


def test_the_task_runs_the_watch(fake, tenant, owner, product_jpeg, tasks_enqueued):
    job = _unsent_job(tenant, owner, product_jpeg)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED, started_at=None)
    _lease("", -60)

    assert tasks.segmind_watch_lease() is True

    assert tasks_enqueued == ["jobs.tasks.segmind_dispatch"]


def test_a_jobs_cluster_worker_enqueues_the_watch_when_it_starts(
    db, monkeypatch, no_worker, django_capture_on_commit_callbacks
):
    sent = no_worker
    monkeypatch.setattr(Conf, "CLUSTER_NAME", Conf.PREFIX)
    monkeypatch.setattr(Conf, "SYNC", False)

    with django_capture_on_commit_callbacks(execute=True):
        signals.watch_on_spawn(sender="django_q", proc_name="Process-1")

    assert [task.func for task in sent] == ["jobs.tasks.segmind_watch_lease"]
    # On the jobs cluster's own queue, where the dispatcher runs.
    assert sent[0].options["cluster"] == Conf.PREFIX


def test_a_webhooks_cluster_worker_does_not(
    db, monkeypatch, no_worker, django_capture_on_commit_callbacks
):
    sent = no_worker
    monkeypatch.setattr(Conf, "CLUSTER_NAME", "webhooks")
    monkeypatch.setattr(Conf, "SYNC", False)

    with django_capture_on_commit_callbacks(execute=True):
        signals.watch_on_spawn(sender="django_q", proc_name="Process-1")

    assert sent == []


def test_tasks_run_inline_start_no_watch(
    fake, tenant, owner, product_jpeg, tasks_enqueued, django_capture_on_commit_callbacks
):
    # In sync mode django-q2 runs each task through its worker function, which sends
    # post_spawn as well: no worker started, so no watch (else each watch enqueues one).
    _unsent_job(tenant, owner, product_jpeg)
    _lease("", -60)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.dispatcher_watch_lease() is True
    assert tasks_enqueued == ["jobs.tasks.segmind_dispatch"]


def test_the_receiver_is_connected_to_django_q2s_post_spawn(db, monkeypatch):
    from django_q.signals import post_spawn

    monkeypatch.setattr(Conf, "CLUSTER_NAME", "webhooks")  # connected, enqueuing nothing
    answered = [receiver for receiver, _ in post_spawn.send(sender="django_q", proc_name="P")]
    assert signals.watch_on_spawn in answered
