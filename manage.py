#!/usr/bin/env python
"""Django's command-line utility for ProductStudio."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "productstudio.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    # Load the settings first: a configuration error (no SECRET_KEY, a bad .env line, a
    # value out of range) is then one line naming the setting and the fix, and a non-zero
    # exit, rather than Django's traceback through its command lookup.
    try:
        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as e:
        sys.stderr.write(f"manage.py stopped: {e}\n")
        sys.exit(1)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
