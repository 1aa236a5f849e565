"""django-q2 tasks: take ids, load rows, call a service. Safe to run twice."""

from jobs import services
from jobs.engines.segmind import dispatcher as provider


def job_run(job_id: str) -> bool:
    # One task per local job, but it runs whichever queued local job's turn it is (its
    # own when its workspace has the turn).
    return services.job_run_next(named=job_id)


def jobs_sweep() -> dict[str, int]:
    return services.jobs_sweep()


def segmind_dispatch() -> dict[str, int]:
    return provider.segmind_dispatch()


def segmind_watch() -> bool:
    return provider.dispatcher_watch()


def segmind_watch_lease() -> bool:
    return provider.dispatcher_watch_lease()
