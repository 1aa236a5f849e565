"""Named leases: at most one holder at a time."""

from __future__ import annotations

from django.db import models


class Lease(models.Model):
    """A named lease: at most one holder at a time (the Segmind dispatcher, the webhook
    sender). General, so it lives here, below jobs; its table keeps the name it was
    created with in jobs."""

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    # What a holder learnt and its successor starts from (the dispatcher: each model's
    # recent inference time).
    state = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "jobs_lease"

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"
