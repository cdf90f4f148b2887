"""A CSV import end to end in a real browser (Debian's Chromium through
Playwright) against the live server: a marketer uploads a file, the real
worker (a qcluster on the test database) imports it, and the page's
progress bar climbs to 100 % by itself, then shows the refused rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from core.roles import MARKETER
from crm.models import ImportJob, ImportStatus, Order
from tests.browser import chromium_browser, watch_csp
from tests.worker import Worker, database_url

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FILE = Path(__file__).parent / "fixtures" / "rakuten_orders_cp932.csv"


@pytest.fixture
def shared_var(settings, tmp_path):
    """The web server and the worker keep and read uploads in one place."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path


@pytest.fixture
def worker(shared_var):
    cluster = Worker(
        {
            "DATABASE_URL": database_url(connection.settings_dict),
            "MADOGUCHI_VAR_DIR": str(shared_var),
            "REDIS_URL": "",
            "Q_WORKERS": "1",
        }
    )
    yield cluster
    cluster.kill()
    cluster.close()


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user(
        "marketer", password="pw-marketer-1234", is_staff=True, last_name="広報"
    )
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


def test_a_marketer_uploads_a_csv_and_watches_the_progress_bar_finish(
    live_server, worker, marketer, monkeypatch, tmp_path
):
    worker.start()
    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        sync_api = pytest.importorskip("playwright.sync_api")
        expect = sync_api.expect
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 1000})
        watch_csp(context, violations)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))

        # when the marketer uploads the Rakuten export
        add_url = "/admin/crm/importjob/add/"
        page.goto(f"{live_server.url}/admin/login/?next={add_url}")
        page.fill("#id_username", "marketer")
        page.fill("#id_password", "pw-marketer-1234")
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{add_url}")
        page.set_input_files("#id_file", str(FILE))
        page.select_option("#id_preset", "rakuten")
        page.locator("input[type=submit]").click()
        job = ImportJob.objects.get()
        page.wait_for_url(re.compile(rf"/admin/crm/importjob/{job.pk}/change/"))

        # then the bar climbs to 100 % by itself (the page polls), and the
        # refused rows appear with their lines
        box = page.locator("#import-progress")
        expect(box.locator("[data-field=percent]")).to_have_text("100", timeout=90_000)
        expect(page.locator("#import-progress")).to_have_attribute("data-finished", "1")
        expect(page.locator("text=注文日時")).to_have_count(1, timeout=15_000)
        expect(page.locator("a.button", has_text="CSV")).to_have_count(1)
        page.screenshot(path=str(tmp_path / "import-finished.png"), full_page=True)
        context.close()

    assert errors == [], worker.log_tail()
    assert violations == []  # the Content-Security-Policy blocked nothing
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert Order.objects.count() == 3
