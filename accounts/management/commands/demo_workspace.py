"""`manage.py demo_workspace`: the demo login of `make run`, created once."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts import services
from accounts.models import User

DEMO_EMAIL = "demo@productstudio.local"
DEMO_PASSWORD = "demo-studio-2026"


class Command(BaseCommand):
    help = "Create (once) a demo workspace with a login, and print the login."

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(
                email=DEMO_EMAIL,
                password=DEMO_PASSWORD,
                name="Demo",
            )
            services.tenant_create(name="Demo Shop", owner=user)
            created = "Created the demo workspace."
        else:
            created = "The demo workspace exists already."
        # SITE_URL is where the studio answers: `make run` sets it to the address it
        # serves on, as it does for the links in emails.
        self.stdout.write(
            f"{created}\n"
            f"  Log in at {settings.SITE_URL}/ with\n"
            f"    email:    {DEMO_EMAIL}\n"
            f"    password: {DEMO_PASSWORD}  (unless you changed it)\n"
            f"  (an operator for the admin: `.venv/bin/python manage.py createsuperuser "
            f"--email you@example.com`, then set up two-factor at the first visit of "
            f"{settings.SITE_URL}/admin/)"
        )
