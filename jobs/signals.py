"""Signal receivers of jobs: django-q2's (a worker of the jobs cluster starting) and
accounts' (a workspace's own Segmind key changed)."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from django.db import transaction

from jobs import services


def watch_on_spawn(sender: Any, proc_name: str = "", **kwargs: Any) -> None:
    """A worker of the jobs cluster has started: look at once for a dead dispatcher.

    A worker starts with a cluster (started again after a crash, say) and when the
    sentinel respawns one that died, perhaps the dispatcher's: a short watch task then
    starts a successor as soon as the dead holder's lease runs out, rather than at the
    next `segmind-watch` schedule (up to a minute later). The webhooks cluster runs no
    dispatcher and is left alone.
    """
    from django_q.conf import Conf

    # An ALT cluster (Q_CLUSTER_NAME=webhooks) has a cluster name of its own; the jobs
    # cluster's is the site's name. In sync mode (the tests) django-q2 runs each task
    # through a worker function in the caller's process, which sends the signal too: no
    # worker started, and a watch there would enqueue a watch again, without end.
    if Conf.SYNC or Conf.CLUSTER_NAME != Conf.PREFIX:
        return
    transaction.on_commit(
        partial(
            services.enqueue,
            "jobs.tasks.segmind_watch_lease",
            task_name=f"segmind-watch-{os.getpid()}",
            cluster=Conf.PREFIX,
        )
    )


def pauses_clear_on_key_change(sender: Any, tenant: Any = None, **kwargs: Any) -> None:
    """A workspace set, replaced or removed its own Segmind key: jobs paused on the old
    key's empty account go back to the queue, to run on the new key (or fail clearly
    without one)."""
    services.provider_pauses_stale_clear()
