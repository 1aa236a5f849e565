"""django-q2 tasks: take ids, load rows, call a service. Safe to run twice."""

from jobs import provider, services


def job_run(job_id: str) -> bool:
    return services.job_run(job_id=job_id)


def jobs_sweep() -> dict[str, int]:
    return services.jobs_sweep()


def segmind_dispatch() -> dict[str, int]:
    return provider.segmind_dispatch()
