"""`manage.py api_key_create <workspace-slug>`: a new API key for scripts and CI."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import Tenant


class Command(BaseCommand):
    help = (
        "Create an API key for a workspace and print it, alone, on standard output "
        "(KEY=$(manage.py api_key_create acme-mugs)). It is shown this once."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("workspace", help="The workspace's slug (as in /w/<slug>/).")
        parser.add_argument(
            "--name", default="manage.py", help="The key's name, shown on the API keys page."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["workspace"]).first()
        if tenant is None:
            raise CommandError(f"workspace: no workspace with the slug {options['workspace']!r}.")
        name = options["name"].strip()
        if not name:
            raise CommandError("--name: give the key a name.")
        created = services.api_key_create(tenant=tenant, name=name)
        # The notice goes to stderr so that stdout is the key alone.
        self.stderr.write(
            f"Created API key {created.key.name!r} ({created.key.masked}) for {tenant.name}; "
            "it is not shown again.",
            style_func=str,  # a notice, not an error (Django colours stderr red)
        )
        self.stdout.write(created.secret)
