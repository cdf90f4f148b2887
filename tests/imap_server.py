"""A real IMAP server for the tests: Dovecot (Debian package dovecot-imapd),
started from a throwaway configuration in a temporary directory.

    server = ImapServer().start()
    server.mailbox_create("Support")
    uid = server.append(raw_bytes, mailbox="Support")
    ...
    server.stop()

Mail goes in the way a mail delivery agent would leave it, by IMAP APPEND.
As root (CI), Dovecot's own unprivileged users run the login and internal
processes and the mail is stored as the ``dovecot`` user (else ``nobody``);
as a developer, everything runs as the current user.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT_MISSING = "dovecot is not installed (Debian package: dovecot-imapd)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dovecot_binary() -> str | None:
    if os.access("/usr/sbin/dovecot", os.X_OK):
        return "/usr/sbin/dovecot"
    return shutil.which("dovecot")


def _user(*names: str) -> pwd.struct_passwd:
    for name in names:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"none of the users {names} exists")


class ImapServer:
    """One Dovecot instance on 127.0.0.1 with one user, plain text login,
    no TLS (the poller is told ``ssl=False``)."""

    user = "support"
    password = "imap-test-password"

    def __init__(self) -> None:
        self.binary = dovecot_binary()
        if self.binary is None:
            raise RuntimeError(DOVECOT_MISSING)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.root: Path | None = None
        self._process: subprocess.Popen | None = None

    # --- lifecycle ---------------------------------------------------------
    def start(self, timeout: float = 10.0) -> ImapServer:
        for attempt in range(3):
            try:
                return self._start(timeout)
            except RuntimeError as exc:
                # the free port was taken in the meantime (parallel tests)
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> ImapServer:
        self.root = Path(tempfile.mkdtemp(prefix="madoguchi-imap-"))
        self.root.chmod(0o755)  # the mail user must reach mail/ below it
        (self.root / "mail").mkdir()
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        (self.root / "passwd").chmod(0o644)  # read by the auth process
        conf = self.root / "dovecot.conf"
        conf.write_text(self._config())
        with (self.root / "stderr.log").open("wb") as stderr:
            self._process = subprocess.Popen(
                [self.binary, "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _config(self) -> str:
        root = self.root
        if os.geteuid() == 0:
            # Dovecot refuses root for its processes and for mail: use the
            # users Debian's package creates, and hand them the mail directory.
            login = _user("dovenull", "nobody")
            internal = _user("dovecot", "nobody")
            mail = internal
            os.chown(root / "mail", mail.pw_uid, mail.pw_gid)
            services = ""
        else:
            login = internal = mail = pwd.getpwuid(os.getuid())
            # Nothing can be chrooted or switched to without root.
            services = (
                f"default_internal_group = {grp.getgrgid(os.getgid()).gr_name}\n"
                "service anvil {\n  chroot =\n}\n"
                "service imap-login {\n  chroot =\n}\n"
                "service auth {\n  user = $default_internal_user\n}\n"
            )
        return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = madoguchi-test-{self.port}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login.pw_name}
default_internal_user = {internal.pw_name}
first_valid_uid = {min(mail.pw_uid, 500)}
mail_location = maildir:{root}/mail/%u
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{services}"""

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited at start:\n{self._diagnostics()}")
            with socket.socket() as sock:
                sock.settimeout(0.5)
                try:
                    sock.connect((self.host, self.port))
                    if sock.recv(100).startswith(b"* OK"):
                        return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer within {timeout}s:\n{self._diagnostics()}")

    def _diagnostics(self) -> str:
        text = ""
        for name in ("dovecot.log", "stderr.log"):
            log = self.root / name if self.root else None
            if log is not None and log.exists():
                text += log.read_text(errors="replace")
        return text[-4000:]

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()  # the master stops its children
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=10)
            self._process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> ImapServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what a mail delivery agent does -----------------------------------
    @contextlib.contextmanager
    def client(self):
        """A logged-in IMAP connection."""
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            _ok(client.login(self.user, self.password))
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def mailbox_create(self, mailbox: str) -> None:
        with self.client() as client:
            _ok(client.create(_quoted(mailbox)))

    def mailbox_recreate(self, mailbox: str) -> None:
        """Delete the mailbox and create it again: a new UIDVALIDITY, as when
        a mail server's mailbox is rebuilt or restored."""
        with self.client() as client:
            _ok(client.delete(_quoted(mailbox)))
            _ok(client.create(_quoted(mailbox)))

    def append(self, raw: bytes, *, mailbox: str = "INBOX") -> int:
        """Store one message; its UID (from the APPENDUID answer)."""
        with self.client() as client:
            status, data = client.append(_quoted(mailbox), None, None, raw)
            _ok((status, data))
        code = data[0].decode()
        if "APPENDUID" not in code:
            raise RuntimeError(f"no APPENDUID in {code!r}")
        return int(code.split("APPENDUID", 1)[1].split()[1].rstrip("]"))

    def uid_validity(self, mailbox: str = "INBOX") -> int:
        with self.client() as client:
            _ok(client.select(_quoted(mailbox), readonly=True))
            return int(client.response("UIDVALIDITY")[1][0])

    def flags(self, mailbox: str = "INBOX") -> dict[int, str]:
        """UID → FLAGS of every message, as the server holds them."""
        with self.client() as client:
            _ok(client.select(_quoted(mailbox), readonly=True))
            status, data = client.uid("fetch", "1:*", "(UID FLAGS)")
            _ok((status, data))
        found = {}
        for line in data:
            if not line:
                continue
            text = line.decode()
            uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
            found[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
        return found


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(answer: tuple) -> None:
    status, data = answer
    if status != "OK":
        raise RuntimeError(f"IMAP answered {status}: {data!r}")
