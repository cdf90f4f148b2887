"""A manager opens the monthly report in a real browser (Debian's Chromium
through Playwright): every chart is drawn, and a table's CSV downloads with
its BOM and parses."""

from __future__ import annotations

import csv
import io
import os

import pytest

from tests.browser import chromium_browser, watch_csp

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MONTHLY = "/admin/reports/countermeasure/monthly/"


def test_manager_sees_every_chart_drawn_and_downloads_a_csv(
    live_server, owner, november, monkeypatch, tmp_path
):
    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        context = browser.new_context(
            locale="ja-JP", viewport={"width": 1366, "height": 900}, accept_downloads=True
        )
        watch_csp(context, violations)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))

        page.goto(f"{live_server.url}/admin/login/?next={MONTHLY}")
        page.fill("#id_username", "owner")
        page.fill("#id_password", "pw-owner-1234")
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{MONTHLY}")
        assert page.locator("h1").inner_text() == "月次トラブル分析"
        assert page.locator("input[name=month]").input_value() == "2026-11"

        canvases = page.locator("canvas[data-chart]")
        keys = [canvases.nth(i).get_attribute("data-chart") for i in range(canvases.count())]
        assert keys == [
            "by_category",
            "by_channel",
            "durations",
            "triage",
            "compliance_channel",
            "compliance_agent",
        ]
        page.wait_for_function(
            "() => [...document.querySelectorAll('canvas[data-chart]')]"
            ".every(c => window.Chart && Chart.getChart(c))"
        )
        drawn = page.evaluate(
            """() => [...document.querySelectorAll('canvas[data-chart]')].map(canvas => {
                const chart = Chart.getChart(canvas);
                const values = chart.data.datasets.flatMap(d => d.data).filter(v => v);
                const pixels = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;
                return [canvas.dataset.chart, values.length > 0, painted > 500];
            })"""
        )
        assert drawn == [[key, True, True] for key in keys]
        if os.environ.get("REPORT_SCREENSHOT"):
            page.screenshot(path=os.environ["REPORT_SCREENSHOT"], full_page=True)

        with page.expect_download() as download_info:
            page.locator("#section-by_channel a.report-csv").click()
        path = tmp_path / "by_channel.csv"
        download_info.value.save_as(path)
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0][0] == "チャネル" and rows[0][-1] == "2026年11月"
        assert [rows[3][0], *rows[3][-2:]] == ["メール", "1", "3"]
    assert errors == []
    assert violations == []  # the Content-Security-Policy blocked nothing
