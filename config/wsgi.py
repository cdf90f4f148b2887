import os

from django.core.wsgi import get_wsgi_application

from config.warm_up import web_process_warm_up

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
web_process_warm_up()  # before the first request, not by it
