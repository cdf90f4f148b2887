import pytest
from django.contrib.auth.models import Group

from core.roles import MARKETER
from outreach.linefake import LineFake
from tests.smtp_server import SmtpServer


@pytest.fixture
def smtp(settings):
    server = SmtpServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture
def line(settings):
    """The LINE fake, with the channel's token and secret set."""
    with LineFake(channel_access_token="test-token", channel_secret="test-secret") as fake:
        settings.LINE_API_HOST = fake.url
        settings.LINE_CHANNEL_ACCESS_TOKEN = "test-token"
        settings.LINE_CHANNEL_SECRET = "test-secret"
        yield fake


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user("marketer", password="pw-1234", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETER))
    return user
