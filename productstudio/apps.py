"""The project's own app configurations."""

from django.contrib.admin.apps import AdminConfig


class StudioAdminConfig(AdminConfig):
    """`django.contrib.admin` with StudioAdminSite (productstudio/admin_site.py) as
    `admin.site`, so every model the apps register there is behind the second factor."""

    default_site = "productstudio.admin_site.StudioAdminSite"
