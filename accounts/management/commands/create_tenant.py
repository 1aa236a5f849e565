"""`manage.py create_tenant`: a workspace and its owner, for scripts and CI."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import User


class Command(BaseCommand):
    help = (
        "Create a workspace and its owner. With --api-key, also create an API key and "
        "print it alone on standard output (KEY=$(manage.py create_tenant ... --api-key)); "
        "what was created is then told on standard error."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True, help="Workspace name.")
        parser.add_argument("--owner", required=True, help="Owner's email (created if new).")
        parser.add_argument("--password", help="Password for a new owner (default: unusable).")
        parser.add_argument(
            "--credits",
            type=int,
            default=0,
            help="Credits to grant the new workspace, besides the trial credits.",
        )
        parser.add_argument("--api-key", action="store_true", help="Create and print an API key.")

    def handle(self, *args: Any, **options: Any) -> None:
        # With a key to print, stdout is the key alone, as api_key_create's is; the rest goes
        # to stderr, unstyled (Django colours stderr as errors).
        def say(message: str) -> None:
            if options["api_key"]:
                self.stderr.write(message, style_func=str)
            else:
                self.stdout.write(message)

        if options["credits"] < 0:
            raise CommandError("--credits: must be zero or more.")
        email = options["owner"].strip().lower()
        with transaction.atomic():
            owner = User.objects.filter(email__iexact=email).first()
            if owner is None:
                owner = User.objects.create_user(email=email, password=options["password"])
                say(f"Created user {owner.email}")
            elif options["password"]:
                raise CommandError(f"--password: {email} exists already; its password is kept.")
            try:
                tenant = services.tenant_create(name=options["name"], owner=owner)
            except services.AccountError as e:
                raise CommandError(e.message) from e
            say(f"Created workspace {tenant.name} ({tenant.slug})")
            if options["credits"]:
                entry = services.credits_grant(
                    tenant=tenant, amount=options["credits"], user=None, memo="create_tenant"
                )
                say(f"Granted {options['credits']} credits ({entry.balance_after})")
            secret = None
            if options["api_key"]:
                secret = services.api_key_create(tenant=tenant, name="create_tenant").secret
        if secret is not None:
            say("API key (shown once, on standard output):")
            self.stdout.write(secret)
