"""What a web server process loads before it takes requests.

Django imports the URLconf (and with it every view, DRF, drf-spectacular
and the admin's views) and the translation catalogues on the first request
that needs them, and the LINE webhook imports the SDK it checks signatures
with on its first call. In a web process that first request is often LINE's
webhook, which LINE redelivers when the answer is slow; so config/wsgi.py
and config/asgi.py load all of it at start, once. Under gunicorn's
preload_app (gunicorn.conf.py) that is in the master, before the port is
bound and the workers fork.

Only web processes: the worker warms itself up (outreach.apps), and
management commands (a piped mail, an import) never pay for the SDK.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.urls import get_resolver
from django.utils import translation


def web_process_warm_up() -> None:
    from outreach.webhooks import line_webhook_warm_up

    get_resolver().reverse_dict  # noqa: B018  (imports every view, builds the reverse map)
    for language, _name in settings.LANGUAGES:
        with translation.override(language):  # loads that language's catalogues
            pass
    line_webhook_warm_up()
    # A forked worker must not share a connection opened here.
    connections.close_all()
