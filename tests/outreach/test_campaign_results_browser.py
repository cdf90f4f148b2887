"""A marketer opens a launched campaign in a real browser (Debian's
Chromium through Playwright): its results chart is drawn, under the
Content-Security-Policy, and the table says what the campaign earned."""

from __future__ import annotations

import pytest

from tests.browser import chromium_browser, watch_csp
from tests.outreach.test_campaign_admin import (
    change_url,
    marketer,  # noqa: F401 (fixture)
    segment,  # noqa: F401 (fixture)
    template,  # noqa: F401 (fixture)
)
from tests.outreach.test_results import fixture_campaign  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_marketer_finds_the_results_chart_drawn_without_csp_violations(
    live_server,
    marketer,  # noqa: F811
    fixture_campaign,  # noqa: F811
    monkeypatch,
):
    url = change_url(fixture_campaign)
    errors: list[str] = []
    violations: list[str] = []
    with chromium_browser(monkeypatch) as browser:
        context = browser.new_context(locale="ja-JP", viewport={"width": 1366, "height": 900})
        watch_csp(context, violations)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))

        page.goto(f"{live_server.url}/admin/login/?next={url}")
        page.fill("#id_username", "marketer")
        page.fill("#id_password", "pw-marketer-1234")
        page.locator("input[type=submit]").click()
        page.wait_for_url(f"{live_server.url}{url}")

        results = page.locator("#campaign-results")
        assert "効果測定" in results.locator("h3").inner_text()
        assert "+33.3%" in results.locator(".campaign-lift").inner_text()
        page.wait_for_function(
            "() => [...document.querySelectorAll('#campaign-results canvas[data-chart]')]"
            ".every(c => window.Chart && Chart.getChart(c))"
        )
        drawn = page.evaluate(
            """() => [...document.querySelectorAll('#campaign-results canvas')].map(canvas => {
                const chart = Chart.getChart(canvas);
                const pixels = canvas.getContext('2d')
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                let painted = 0;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;
                return [canvas.dataset.chart, chart.data.datasets.length, painted > 500];
            })"""
        )
        assert drawn == [["counts", 2, True], ["revenue", 2, True]]
    assert errors == []
    assert violations == []  # the Content-Security-Policy blocked nothing
