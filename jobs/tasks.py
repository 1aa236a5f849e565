"""django-q2 tasks: take ids, load rows, call a service. Safe to run twice.

The only module that imports the Segmind dispatcher: services start it by enqueuing
`segmind_dispatch` by name (`services.dispatcher_ensure`)."""

from jobs import dispatcher, services


def job_run(job_id: str) -> bool:
    # One task per local job, but it runs whichever queued local job's turn it is (its
    # own when its workspace has the turn).
    return services.job_run_next(named=job_id)


def jobs_sweep() -> dict[str, int]:
    return services.jobs_sweep()


def segmind_dispatch() -> dict[str, int]:
    return dispatcher.segmind_dispatch()


def segmind_watch() -> bool:
    return services.dispatcher_watch()


def segmind_watch_lease() -> bool:
    return services.dispatcher_watch_lease()
