"""Shared fixtures. Three users (owner, colleague, outsider) per STYLE.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import Group
from hypothesis import HealthCheck, settings

from core.models import ApiKey, ApiScope
from core.roles import AGENT, MANAGER
from core.services import api_key_create
from tests.seeds import seed_data_restore

if TYPE_CHECKING:
    from tests.redis_server import RedisServer
    from tests.worker import WorkerClusters

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """PBKDF2 costs ~1 s a hash here; tests need no slow hashing."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        # still verifies hashes made by module-scoped fixtures before this one
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture(autouse=True)
def _admin_without_second_factor(settings):
    """Admin tests log in with force_login; tests/core/test_otp.py turns the
    second factor on and proves it."""
    settings.ADMIN_REQUIRE_OTP = False


@pytest.fixture(autouse=True)
def _seed_data_present(request):
    """A `transaction=True` test ends by flushing every table, seed rows
    included; put them back for the tests that follow, and warm the
    content-type cache."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    seed_data_restore()


@pytest.fixture
def owner(django_user_model):
    user = django_user_model.objects.create_user(
        "owner", password="pw-owner-1234", is_staff=True, last_name="店長"
    )
    user.groups.add(Group.objects.get(name=MANAGER))
    return user


@pytest.fixture
def colleague(django_user_model):
    user = django_user_model.objects.create_user(
        "colleague", password="pw-colleague-1234", is_staff=True, last_name="佐藤"
    )
    user.groups.add(Group.objects.get(name=AGENT))
    return user


@pytest.fixture
def outsider(django_user_model):
    """Logged in, but neither staff nor in any group."""
    return django_user_model.objects.create_user("outsider", password="pw-outsider-1234")


def make_api_key(
    *, scope: str = ApiScope.WRITE, channels=("own_site",), label: str = "store"
) -> tuple[ApiKey, str]:
    return api_key_create(label=label, scope=scope, channels=channels)


# --- django-q2 brokers ------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server():
    """A throwaway redis-server for the session (tests/redis_server.py);
    the tests that need it are skipped where it is not installed."""
    from tests.redis_server import MISSING, RedisServer, redis_server_binary

    binary = redis_server_binary()
    if binary is None:
        pytest.skip(MISSING)
    server = RedisServer(binary).start()
    yield server
    server.stop()


@dataclass(frozen=True)
class QueueBroker:
    name: str
    worker_env: dict[str, str]  # what a qcluster subprocess adds to its environment
    clusters: int  # how many qclusters share the queue
    redis: RedisServer | None = None

    def assert_shared_by(self, clusters: WorkerClusters) -> None:
        """The clusters (tests.worker.WorkerClusters) shared the work of
        this broker's queue: they read it, and each of them took tasks."""
        if self.redis is not None:
            # only a qcluster's pusher BLPOPs; this process pushes and counts
            assert self.redis.calls("blpop") > 0, "no cluster read the Redis queue"
        taken = clusters.tasks_taken()
        assert min(taken) > 0, f"tasks taken by each cluster: {taken}\n{clusters.log_tail(30)}"


@pytest.fixture
def broker(request, monkeypatch) -> QueueBroker:
    """The django-q2 broker a test's worker clusters use: the ORM broker
    (the default), or, parametrised with "redis", a real redis-server
    (REDIS_URL) shared by TWO clusters, as a scaled-out deployment runs
    (README, Deployment). This process enqueues and reads the queue through
    the same broker: django-q2 reads its settings once, at import, so its
    configuration is switched here as REDIS_URL would have set it."""
    if getattr(request, "param", "orm") == "orm":
        return QueueBroker("orm", {"REDIS_URL": ""}, clusters=1)
    from django_q.conf import Conf

    server = request.getfixturevalue("redis_server")
    server.flush()  # no task left over from another test
    monkeypatch.setattr(Conf, "ORM", None)
    monkeypatch.setattr(Conf, "REDIS", server.url)
    return QueueBroker("redis", {"REDIS_URL": server.url}, clusters=2, redis=server)
