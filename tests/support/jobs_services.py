"""Fixtures for tests of jobs.services: where a test needs a seam (an enqueue not sent, a call
that fails), a fixture here patches the one module that owns it, so tests never reach
into service internals themselves.

Tasks are caught where they leave for django-q2 (`django_q.tasks.async_task`), whichever
service enqueued them; a private helper is patched in the submodule that calls it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple

import django_q.tasks
import pytest

from accounts import services as account_services
from jobs.engines import local as local_engine
from jobs.services import batches, runs, submit


class EnqueuedTask(NamedTuple):
    """A task handed to django-q2: its dotted name, its arguments and its options."""

    func: str
    args: tuple[Any, ...]
    options: dict[str, Any]


@pytest.fixture
def no_worker(monkeypatch: pytest.MonkeyPatch) -> list[EnqueuedTask]:
    """No worker takes tasks: each task handed to django-q2 (a local job's, the Segmind
    dispatcher's, a watch's, a webhook delivery's) is recorded, in order, and not run, so
    new jobs stay queued until the test runs them."""
    tasks: list[EnqueuedTask] = []

    def record(func: str, *args: Any, **options: Any) -> None:
        tasks.append(EnqueuedTask(func, args, options))

    monkeypatch.setattr(django_q.tasks, "async_task", record)
    return tasks


@pytest.fixture
def tasks_enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the tasks handed to django-q2, in order; they still run (inline, as the
    test settings have it). More than 20 fail the test: tasks enqueuing each other without
    end."""
    names: list[str] = []
    real = django_q.tasks.async_task

    def spy(func: str, *args: Any, **options: Any) -> Any:
        names.append(func)
        if len(names) > 20:
            raise AssertionError(f"tasks enqueued without end: {names[-3:]}")
        return real(func, *args, **options)

    monkeypatch.setattr(django_q.tasks, "async_task", spy)
    return names


@pytest.fixture
def webhook_events_recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The webhook events the jobs' services emit, recorded instead of stored: each as
    {"type": ..., "data": ...}, its data built when it is emitted."""
    events: list[dict[str, Any]] = []

    def emit(**event: Any) -> list[Any]:
        events.append({"type": event["type"], "data": event["data"]()})
        return []

    monkeypatch.setattr(account_services, "webhook_event_emit", emit)
    return events


@pytest.fixture
def packshot_inputs_recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size of each image the local engine makes a packshot from, in order (the
    packshot is still made)."""
    sizes: list[tuple[int, int]] = []
    real = local_engine.render_packshot

    def render_packshot(image: Any, **options: Any) -> Any:
        sizes.append(image.size)
        return real(image, **options)

    monkeypatch.setattr(local_engine, "render_packshot", render_packshot)
    return sizes


@pytest.fixture
def batch_fetch_then(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], None]], None]:
    """`batch_fetch_then(callback)`: the callback runs once a batch's photos are fetched
    and before its jobs are made (something that happens meanwhile, a spend, say)."""

    def then(callback: Callable[[], None]) -> None:
        real = batches._batch_inputs_fetch

        def fetched_then(**kwargs: Any) -> Any:
            fetched = real(**kwargs)
            callback()
            return fetched

        monkeypatch.setattr(batches, "_batch_inputs_fetch", fetched_then)

    return then


@pytest.fixture
def batch_check_scheduled_after(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[Callable[[Any], object]], None]:
    """`batch_check_scheduled_after(callback)`: in the transaction that ends a job of a
    batch (succeeded, failed, canceled), the callback runs with the batch's id just before
    the batch's completion check is scheduled for after the commit."""

    def after(callback: Callable[[Any], object]) -> None:
        real = runs._batch_check_after_commit

        def scheduled_after(batch_id: Any) -> None:
            callback(batch_id)
            real(batch_id)

        monkeypatch.setattr(runs, "_batch_check_after_commit", scheduled_after)

    return after


@pytest.fixture
def job_submit_broken_inside() -> Callable[[], AbstractContextManager[None]]:
    """`with job_submit_broken_inside():` `job_submit` fails with a RuntimeError after it made
    the job's row, inside its transaction (holding the job's credits raises): a bug there."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug after the job row was made, inside the service's transaction")

    @contextmanager
    def breaking() -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(submit, "_job_hold", broken)
            yield

    return breaking
