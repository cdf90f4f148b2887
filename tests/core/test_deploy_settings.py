"""Production settings: `manage.py check --deploy` is clean with HTTPS=true.

Each test starts Django in a subprocess with its own environment, as a
production host would (settings are read once, from the environment).
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "shop.example.jp"


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MADOGUCHI_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "REQUIRE_SECRET_KEY": "true",
        "ALLOWED_HOSTS": HOST,
    }
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return manage(env, "check", "--deploy", "--fail-level", "WARNING")


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    result = check_deploy(production_env(tmp_path, HTTPS="true"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr


def test_check_deploy_warns_without_https(tmp_path):
    result = check_deploy(production_env(tmp_path))
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


# Requests made by Django's test client inside the production-configured
# process: the status, redirect target and security response details.
PROBE = f"""
import json
from django.test import Client

client = Client(HTTP_HOST={HOST!r})
answers = {{}}
for name, headers in (("plain", {{}}), ("proxied", {{"X-Forwarded-Proto": "https"}})):
    response = client.get("/admin/login/", headers=headers)
    csrf = response.cookies.get("csrftoken")
    answers[name] = {{
        "status": response.status_code,
        "location": response.headers.get("Location", ""),
        "hsts": response.headers.get("Strict-Transport-Security", ""),
        "csrf_cookie_secure": bool(csrf and csrf["secure"]),
    }}
print(json.dumps(answers))
"""


def probe(env: dict[str, str]) -> dict:
    result = manage(env, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_https_redirects_plain_http_and_trusts_the_proxy_header(tmp_path):
    answers = probe(production_env(tmp_path, HTTPS="true", SECURE_PROXY_SSL_HEADER="true"))

    assert answers["plain"]["status"] == 301
    assert answers["plain"]["location"] == f"https://{HOST}/admin/login/"

    proxied = answers["proxied"]
    assert proxied["status"] == 200
    assert "max-age=31536000" in proxied["hsts"]
    assert "includeSubDomains" in proxied["hsts"]
    assert proxied["csrf_cookie_secure"]


def test_forwarded_proto_is_ignored_unless_the_proxy_setting_is_on(tmp_path):
    answers = probe(production_env(tmp_path, HTTPS="true"))

    assert answers["proxied"]["status"] == 301
    assert answers["proxied"]["location"] == f"https://{HOST}/admin/login/"


def test_plain_http_is_served_when_https_is_off(tmp_path):
    answers = probe(production_env(tmp_path))

    assert answers["plain"]["status"] == 200
    assert answers["plain"]["hsts"] == ""
    assert not answers["plain"]["csrf_cookie_secure"]
