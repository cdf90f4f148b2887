"""A throwaway redis-server for the tests that run django-q2 on Redis.

Started like the PostgreSQL of scripts/with-postgres.sh: on a free loopback
port, as an unprivileged user when the tests run as root, keeping nothing
on disk (no RDB snapshots, no append-only file), stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import redis

from tests.smtp_server import free_port
from tests.web_server import HOST

MISSING = "redis-server not found: install the Debian package redis-server"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="madoguchi-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, *, timeout: float = 15.0) -> RedisServer:
        command = [
            self.binary,
            "--bind", HOST,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", self.directory,
            "--daemonize", "no",
            "--logfile", self.log_path,
        ]  # fmt: skip
        if os.getuid() == 0:  # root: run the server as nobody
            shutil.chown(self.directory, user="nobody")
            command = ["runuser", "-u", "nobody", "--", *command]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        client = redis.Redis(host=HOST, port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log()
                    self.stop()
                    raise RuntimeError(f"redis-server did not start:\n{log}") from None
                time.sleep(0.05)

    @property
    def log_path(self) -> str:
        return os.path.join(self.directory, "redis.log")

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as log:
                return log.read()[-4000:]
        except OSError:
            return ""

    def flush(self) -> None:
        """Empty every key and zero the command counters."""
        client = redis.Redis.from_url(self.url)
        client.flushall()
        client.config_resetstat()

    def calls(self, command: str) -> int:
        """How many times `command` ran since the last flush."""
        stats = redis.Redis.from_url(self.url).info("commandstats")
        return stats.get(f"cmdstat_{command.lower()}", {}).get("calls", 0)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        shutil.rmtree(self.directory, ignore_errors=True)
