import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_url


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("TRUE", True), ("on", True), ("no", False), ("0", False), ("", True)],
)
def test_env_bool_accepts_the_usual_spellings(monkeypatch, raw, value):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", True) is value


@pytest.mark.parametrize("raw", ["yes please", "2", "Ja", "tru"])
def test_malformed_boolean_is_an_error_not_false(monkeypatch, raw):
    monkeypatch.setenv("FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="FLAG"):
        env_bool("FLAG", False)


def test_env_int_refuses_garbage_and_out_of_range(monkeypatch):
    monkeypatch.setenv("N", "12x")
    with pytest.raises(ImproperlyConfigured, match="N='12x'"):
        env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 5, minimum=1)
    monkeypatch.setenv("N", " 42 ")
    assert env_int("N", 5) == 42


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example.jp, b.example.jp ,,")
    assert env_list("HOSTS", []) == ["a.example.jp", "b.example.jp"]
    monkeypatch.delenv("HOSTS")
    assert env_list("HOSTS", ["x"]) == ["x"]


def test_settings_refuse_a_malformed_debug_flag():
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
            "django.setup()",
        ],
        env={"DEBUG": "maybe", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


@pytest.mark.parametrize(
    "raw", ["shop.example.jp", "ftp://shop.example.jp", "https://", "https://a b.jp"]
)
def test_env_url_refuses_what_is_not_an_http_address(monkeypatch, raw):
    monkeypatch.setenv("SHOP_RAKUTEN_URL", raw)
    with pytest.raises(ImproperlyConfigured, match="SHOP_RAKUTEN_URL"):
        env_url("SHOP_RAKUTEN_URL", "https://x.example.jp")


def test_env_url_keeps_an_address_and_reads_empty_as_not_offered(monkeypatch):
    monkeypatch.setenv("SHOP_YAHOO_URL", " https://store.shopping.yahoo.co.jp/shop/ ")
    assert env_url("SHOP_YAHOO_URL", "") == "https://store.shopping.yahoo.co.jp/shop/"
    monkeypatch.setenv("SHOP_YAHOO_URL", "")
    assert env_url("SHOP_YAHOO_URL", "https://x.example.jp") == ""
    monkeypatch.delenv("SHOP_YAHOO_URL")
    assert env_url("SHOP_YAHOO_URL", "https://x.example.jp") == "https://x.example.jp"
