"""Give every asset stored before thumbnails existed its thumbnail (idempotent)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from jobs import services


class Command(BaseCommand):
    help = "Make the missing thumbnails of stored assets; assets that have one are left alone."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args: Any, **options: Any) -> None:
        made = services.assets_thumbnails_backfill(batch_size=options["batch_size"])
        self.stdout.write(f"{made} thumbnail{'s' if made != 1 else ''} made.")
