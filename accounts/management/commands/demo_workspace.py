"""`manage.py demo_workspace`: the demo login of `make run`, created once."""

from typing import Any

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
        self.stdout.write(
            f"{created}\n"
            f"  Log in at http://127.0.0.1:8000/ with\n"
            f"    email:    {DEMO_EMAIL}\n"
            f"    password: {DEMO_PASSWORD}  (unless you changed it)\n"
            f"  (an operator for the admin: `manage.py createsuperuser`, then set up "
            f"two-factor at the first visit of /admin/)"
        )
