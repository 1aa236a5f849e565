from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_system_presets(sender: AppConfig, **kwargs: Any) -> None:
    from jobs import services

    services.presets_sync_system()


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs and gallery"

    def ready(self) -> None:
        # System presets are data shipped with the code: every migrate (and the test
        # database's flush) brings them in line with jobs/system_presets.json.
        post_migrate.connect(_sync_system_presets, sender=self)
        # Each worker of the jobs cluster looks for a dead Segmind dispatcher when it starts.
        from django_q.signals import post_spawn

        from jobs.signals import watch_on_spawn

        post_spawn.connect(watch_on_spawn, dispatch_uid="jobs-watch-on-spawn")
        # Accounts stores a workspace's own Segmind key; jobs asks Segmind about it and
        # clears the pauses a change makes stale (accounts never imports jobs).
        from accounts.services import segmind_key_changed, segmind_key_verifier_set
        from jobs.services import segmind_key_verify
        from jobs.signals import pauses_clear_on_key_change

        segmind_key_verifier_set(segmind_key_verify)
        segmind_key_changed.connect(pauses_clear_on_key_change, dispatch_uid="jobs-key-changed")
