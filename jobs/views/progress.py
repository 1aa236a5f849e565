"""What the job and batch pages show of a job's progress and update as they poll: its
state, its place in line, and the words for times and waits."""

from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.selectors import queue as queueing


def _seconds_words(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def timing_text(*, status: str, elapsed: float, typical: float | None) -> str:
    """The time a job has taken against the usual, as its page says it (static/js/job.js
    and batch.js say it the same way between two polls)."""
    usual = f"about {_seconds_words(typical)}" if typical else ""
    if status == JobStatus.SUCCEEDED:
        return f"Took {_seconds_words(elapsed)}" + (f" (usually {usual})" if usual else "")
    if status in (JobStatus.FAILED, JobStatus.CANCELED):
        return f"Ended after {_seconds_words(elapsed)}"
    if not typical:
        return f"{_seconds_words(elapsed)} so far"
    if elapsed <= typical:
        return f"{_seconds_words(elapsed)} of {usual}"
    return f"{_seconds_words(elapsed)} so far, longer than the usual {_seconds_words(typical)}"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _about_words(seconds: float) -> str:
    """A wait, roughly: seconds under a minute, then minutes, then hours and minutes."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def queue_text(*, place: queueing.QueuePlace, engine: str, now: datetime) -> str:
    """A queued job's place as its page says it: "In line: 12th for Segmind · starts in
    about 40 s"."""
    line = "Segmind" if engine == "segmind" else "a worker"
    wait = (place.estimated_start_at - now).total_seconds()
    start = "should start any moment" if wait < 1 else f"starts in about {_about_words(wait)}"
    return f"In line: {_ordinal(place.position)} for {line} · {start}"


def _queue_state(job: Job) -> dict[str, Any] | None:
    """A queued job's place in line for its page (a few queries: one job at a time)."""
    now = timezone.now()
    place = queueing.job_queue_place(job=job, now=now)
    if place is None:
        return None
    return {
        "position": place.position,
        "ahead": place.ahead,
        "estimated_start_at": place.estimated_start_at.isoformat(),
        "text": queue_text(place=place, engine=job.engine, now=now),
    }


def finish_text(*, finish: datetime, now: datetime) -> str:
    """A batch's estimated finish as its page says it: "Estimated finish: about 3 min
    (14:32)", the clock in the site's time zone."""
    wait = (finish - now).total_seconds()
    clock = timezone.localtime(finish).strftime("%H:%M")
    if wait < 1:
        return f"Estimated finish: any moment ({clock})"
    return f"Estimated finish: about {_about_words(wait)} ({clock})"


def _job_state(job: Job, slug: str, *, now: Any = None) -> dict[str, Any]:
    """What a job page or a batch row shows of a job and updates as it runs."""
    return {
        "id": str(job.id),
        "status": job.status,
        "label": job.status_label,
        "terminal": job.is_terminal,
        "elapsed_seconds": round(job.elapsed_seconds(now), 1),
        "typical_seconds": job.typical_seconds,
        "timing": timing_text(
            status=job.status, elapsed=job.elapsed_seconds(now), typical=job.typical_seconds
        ),
        "error_code": job.error_code if job.status == JobStatus.FAILED else "",
        "error_message": job.error_message if job.status == JobStatus.FAILED else "",
        "url": reverse("job_detail", args=[slug, job.id]),
    }
