"""The segment admin: rule builder page, live counts, the preview endpoint,
saving through segment_save, and who may do what."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.roles import MARKETER
from crm import services
from outreach.admin.segments import builder_schema
from outreach.models import Segment
from outreach.segments import SEGMENT_FIELDS, SegmentField
from outreach.services import segment_save
from tests.crm import factories

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:outreach_segment_changelist")
ADD = reverse("admin:outreach_segment_add")
PREVIEW = reverse("admin:outreach_segment_preview")
BUILDER_JS = Path(settings.BASE_DIR) / "outreach" / "static" / "outreach" / "segment_builder.js"


def change_url(segment: Segment) -> str:
    return reverse("admin:outreach_segment_change", args=[segment.pk])


def rule_of(*conditions: dict, match: str = "all") -> dict:
    return {"match": match, "conditions": list(conditions)}


def cond(field: str, op: str, value=None) -> dict:
    return {"field": field, "op": op, "value": value}


TOKYO_REPEATERS = rule_of(cond("prefecture", "in", ["東京都"]), cond("order_count", "gte", 2))


@pytest.fixture
def marketer(django_user_model):
    user = django_user_model.objects.create_user(
        "marketer", password="pw-marketer-1234", is_staff=True, last_name="鈴木"
    )
    user.groups.add(Group.objects.get(name=MARKETER))
    return user


@pytest.fixture
def customers():
    """Two Tokyo repeaters, one Tokyo one-timer, one Osaka repeater."""
    made = {}
    for name, prefecture, orders in (
        ("東京一", "東京都", 2),
        ("東京二", "東京都", 3),
        ("東京三", "東京都", 1),
        ("大阪一", "大阪府", 2),
    ):
        customer = factories.customer(family_name=name, prefecture=prefecture)
        for _ in range(orders):
            factories.order(customer=customer)
        made[name] = customer
    return made


def segment_make(name: str, rule: dict | None = None, **kw) -> Segment:
    kind = "lifecycle" if "lifecycle_segment" in kw else "custom"
    return segment_save(segment=None, name=name, kind=kind, rule=rule, actor=None, **kw)


def preview(client, payload) -> tuple[int, dict]:
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    response = client.post(PREVIEW, body, content_type="application/json")
    is_json = response.get("Content-Type", "").startswith("application/json")
    return response.status_code, response.json() if is_json else {}


def form_data(**overrides) -> dict:
    data = {
        "name": "東京の常連",
        "kind": "custom",
        "lifecycle_segment": "",
        "description": "",
        "rule": json.dumps(TOKYO_REPEATERS, ensure_ascii=False),
    }
    data.update(overrides)
    return data


# --- Changelist ---------------------------------------------------------------


def test_changelist_counts_every_row_in_one_query(
    client, owner, customers, django_assert_num_queries
):
    client.force_login(owner)
    for index in range(3):
        segment_make(f"東京{index}", TOKYO_REPEATERS)
    # session, user, permissions (2), page count, rows, one COUNT for all the
    # rows, the incident banner
    with django_assert_num_queries(8):
        response = client.get(CHANGELIST)
    assert len(response.context["cl"].result_list) == 3

    for index in range(6):
        segment_make(f"追加{index}", rule_of(cond("order_count", "gte", index)))
    segment_make("優良", lifecycle_segment="vip")
    with django_assert_num_queries(8):
        response = client.get(CHANGELIST)
    counts = {row.name: row.segment_live_count for row in response.context["cl"].result_list}
    assert len(counts) == 10
    assert (counts["東京0"], counts["追加0"], counts["追加2"], counts["優良"]) == (2, 4, 3, 0)


def test_changelist_shows_each_segments_rule_and_live_count(client, owner, customers):
    client.force_login(owner)
    segment_make("東京の常連", TOKYO_REPEATERS)
    segment_make("見込み客", lifecycle_segment="prospect")
    response = client.get(CHANGELIST)
    rows = {row.name: row.segment_live_count for row in response.context["cl"].result_list}
    assert rows == {"東京の常連": 2, "見込み客": 0}
    page = response.content.decode()
    assert "東京都" in page  # the rule's description


def test_changelist_survives_a_rule_whose_field_was_removed(client, owner, customers):
    # given a segment saved while an app offered a field that is gone now
    SEGMENT_FIELDS["loyalty_points"] = SegmentField(
        "loyalty_points", "points", ("gte",), lambda op, value, now: None
    )
    try:
        old = segment_make("ポイント会員", rule_of(cond("loyalty_points", "gte", 100)))
    finally:
        del SEGMENT_FIELDS["loyalty_points"]
    segment_make("東京の常連", TOKYO_REPEATERS)
    client.force_login(owner)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    rows = {row.name: row.segment_live_count for row in response.context["cl"].result_list}
    assert rows == {"ポイント会員": None, "東京の常連": 2}
    assert "条件 1 の項目" in response.content.decode()
    assert "conditions[0]" not in response.content.decode()
    assert client.get(change_url(old)).status_code == 200


# --- Change page ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "marketer"])
def test_change_page_shows_builder_count_and_sample_in_japanese(client, request, who, customers):
    client.force_login(request.getfixturevalue(who))
    segment = segment_make("東京の常連", TOKYO_REPEATERS)

    response = client.get(change_url(segment))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="ja"' in page
    assert "保存" in page  # the admin's own Japanese
    assert response.context["segment_current_count"] == "2"
    assert {row["name"] for row in response.context["segment_current_sample"]} == {
        "東京一 " + customers["東京一"].given_name,
        "東京二 " + customers["東京二"].given_name,
    }
    assert 'id="segment-builder"' in page
    assert "outreach/segment_builder.js" in page
    schema = json.loads(
        page.split('id="segment-builder-schema" type="application/json">')[1].split("</script>")[0]
    )
    assert [field["name"] for field in schema["fields"]] == list(SEGMENT_FIELDS)
    prefectures = next(f for f in schema["fields"] if f["name"] == "prefecture")
    assert ["東京都", "東京都"] in prefectures["choices"]
    # the rule as JSON, readable
    assert "東京都" in response.context["adminform"].form["rule"].value()


def test_add_page_renders_for_a_marketer(client, marketer):
    client.force_login(marketer)
    response = client.get(ADD)
    assert response.status_code == 200
    assert response.context["segment_editable"] is True


def test_builder_schema_offers_existing_tags():
    customer = factories.customer(tags=["ギフト"])
    services.customer_tags_add(customer=customer, names=["メルマガ"])
    tag = next(f for f in builder_schema()["fields"] if f["name"] == "tag")
    assert tag["choices"] is None
    assert tag["suggestions"] == ["ギフト", "メルマガ"]


# --- Saving ----------------------------------------------------------------------


def test_marketer_adds_a_custom_segment_through_the_service(client, marketer):
    client.force_login(marketer)
    rule = rule_of(cond("order_count", "gte", "2"), cond("prefecture", "in", ["東京都"]))

    response = client.post(ADD, form_data(rule=json.dumps(rule), lifecycle_segment="vip"))

    assert response.status_code == 302
    segment = Segment.objects.get(name="東京の常連")
    assert segment.rule == rule_of(
        cond("order_count", "gte", 2), cond("prefecture", "in", ["東京都"])
    )
    assert segment.lifecycle_segment == ""
    assert segment.created_by == marketer


def test_a_bad_rule_comes_back_as_a_form_error_naming_the_path(client, marketer):
    client.force_login(marketer)
    rule = rule_of(cond("order_count", "gte", 1), cond("order_count", "gte", "abc"))

    response = client.post(ADD, form_data(rule=json.dumps(rule)))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "条件 2 の値" in " ".join(errors["rule"])
    assert "conditions[" not in response.content.decode()
    assert not Segment.objects.exists()
    assert "errornote" in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rule": "{not json"}, "rule"),
        ({"rule": "[" * 100_000}, "rule"),
        ({"rule": ""}, "rule"),  # a custom segment needs a condition
        ({"kind": "lifecycle", "lifecycle_segment": ""}, "lifecycle_segment"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_input_is_a_form_error_never_a_500(client, owner, overrides, field):
    client.force_login(owner)
    response = client.post(ADD, form_data(**overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Segment.objects.exists()


def test_a_taken_name_is_a_form_error(client, owner):
    segment_make("東京の常連", TOKYO_REPEATERS)
    client.force_login(owner)
    response = client.post(ADD, form_data())
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert Segment.objects.count() == 1


def test_changing_a_segment_to_lifecycle_drops_its_rule(client, owner):
    segment = segment_make("東京の常連", TOKYO_REPEATERS)
    client.force_login(owner)
    response = client.post(
        change_url(segment), form_data(kind="lifecycle", lifecycle_segment="sleeping")
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.kind, segment.lifecycle_segment, segment.rule) == ("lifecycle", "sleeping", {})


# --- Preview endpoint ------------------------------------------------------------


def test_preview_counts_describes_and_samples_a_rule(client, marketer, customers):
    client.force_login(marketer)
    status, body = preview(client, {"kind": "custom", "rule": TOKYO_REPEATERS})
    assert status == 200
    assert body["count"] == 2
    assert "東京都" in body["description"]
    assert {row["name"].split()[0] for row in body["sample"]} == {"東京一", "東京二"}
    row = body["sample"][0]
    assert set(row) == {"id", "name", "kana", "segment", "last_order", "claimant", "url"}
    assert row["kana"] == "ヤマダ タロウ" and row["last_order"] and row["segment"]


def test_preview_of_a_lifecycle_segment(client, marketer, customers):
    client.force_login(marketer)
    status, body = preview(client, {"kind": "lifecycle", "lifecycle_segment": "regular"})
    assert status == 200
    assert body["count"] == 3  # two orders or more


def test_preview_is_a_fixed_handful_of_queries(client, marketer, customers):
    client.force_login(marketer)
    with CaptureQueriesContext(connection) as few:
        preview(client, {"rule": rule_of(cond("order_count", "gte", 0))})
    for index in range(12):
        factories.customer(family_name=f"追加{index}")
    with CaptureQueriesContext(connection) as many:
        status, body = preview(client, {"rule": rule_of(cond("order_count", "gte", 0))})
    assert (status, body["count"], len(body["sample"])) == (200, 16, 10)
    # session, user, permissions (2), the sample; and the COUNT once the sample is full
    assert (len(few), len(many)) == (5, 6)


@pytest.mark.parametrize(
    ("payload", "field", "path"),
    [
        ({"rule": rule_of(cond("order_count", "gte", "abc"))}, "rule", "conditions[0].value"),
        ({"rule": rule_of(cond("tag", "eq", 1))}, "rule", "conditions[0].op"),
        ({"rule": {"match": "all", "conditions": []}}, "rule", "conditions"),
        ({"rule": "garbage"}, "rule", "rule"),
        ({"kind": "lifecycle"}, "lifecycle_segment", None),
        ({"kind": ["custom"]}, "kind", None),
        ("not json", "__all__", None),
        ("[1, 2]", "__all__", None),
    ],
)
def test_preview_errors_are_400_with_field_and_path(client, marketer, payload, field, path):
    client.force_login(marketer)
    status, body = preview(client, payload)
    assert status == 400
    assert body["errors"][field]
    if path is not None:
        assert path in body["paths"]


def test_preview_accepts_only_post(client, marketer):
    client.force_login(marketer)
    assert client.get(PREVIEW).status_code == 405


# --- Who may ----------------------------------------------------------------------


def test_outsider_is_sent_to_the_login_page(client, outsider):
    segment = segment_make("東京の常連", TOKYO_REPEATERS)
    client.force_login(outsider)
    for url in (CHANGELIST, ADD, change_url(segment)):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post(PREVIEW, json.dumps({"rule": TOKYO_REPEATERS}), "application/json")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_agent_cannot_see_add_or_change_segments(client, colleague, customers):
    segment = segment_make("東京の常連", TOKYO_REPEATERS)
    client.force_login(colleague)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, form_data(name="代理店")).status_code == 403
    assert client.get(change_url(segment)).status_code == 403
    assert client.post(change_url(segment), form_data(name="変更")).status_code == 403
    assert preview(client, {"rule": TOKYO_REPEATERS}) == (403, {})
    assert Segment.objects.get().name == "東京の常連"


# --- The builder script ------------------------------------------------------------


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_builder_script_parses():
    subprocess.run(["node", "--check", str(BUILDER_JS)], check=True)


# --- The builder in a real browser -------------------------------------------------


def _chromium() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def builder_page(playwright, live_server, session: str):
    """Chromium, and a page on the new segment form in `session`."""
    browser = playwright.chromium.launch(executable_path=_chromium())
    context = browser.new_context(locale="ja-JP")
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page = context.new_page()
    page.goto(live_server.url + ADD)
    return browser, page


@pytest.fixture
def browser_marketer(django_user_model):
    """A marketer for transactional tests: an earlier transactional test's
    flush may have removed the groups the migrations made (the permissions
    come back with post_migrate, the groups do not)."""
    group, _ = Group.objects.get_or_create(name=MARKETER)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="outreach",
            codename__in=["view_segment", "add_segment", "change_segment"],
        )
    )
    user = django_user_model.objects.create_user("marketer", is_staff=True)
    user.groups.add(group)
    return user


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs playwright and a chromium")
@pytest.mark.django_db(transaction=True)
def test_marketer_builds_a_segment_in_the_browser_and_watches_the_count(
    live_server, client, browser_marketer, customers
):
    marketer = browser_marketer
    from playwright.sync_api import expect, sync_playwright

    client.force_login(marketer)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser, page = builder_page(playwright, live_server, session)
        builder = page.locator("#segment-builder")
        count = page.locator("#segment-preview-count")

        # when the marketer adds "number of orders ≥ 2"
        builder.locator(".segment-add-condition").first.click()
        row = builder.locator(".segment-row").nth(0)
        row.locator("select").nth(1).select_option("gte")
        row.locator("input[type=number]").fill("2")
        # then the count follows: three customers ordered twice or more
        expect(count).to_have_text("3")

        # when she adds "prefecture is one of 東京都"
        builder.locator(".segment-add-condition").first.click()
        row = builder.locator(".segment-row").nth(1)
        row.locator("select").nth(0).select_option("prefecture")
        row.get_by_label("東京都").check()
        expect(count).to_have_text("2")
        expect(page.locator("#segment-preview-sample tbody tr")).to_have_count(2)

        # a value out of range is shown on its row, not sent as a 500
        builder.locator(".segment-row").nth(0).locator("input[type=number]").fill("-1")
        expect(page.locator("#segment-preview-errors li")).to_contain_text("条件 1 の値")
        expect(builder.locator(".segment-row.errors")).to_have_count(1)
        builder.locator(".segment-row").nth(0).locator("input[type=number]").fill("2")
        expect(count).to_have_text("2")

        # a nested "any of" group, added and filled
        builder.locator(".segment-add-group").first.click()
        nested = builder.locator(".segment-group .segment-group")
        nested.locator(".segment-row select").nth(0).select_option("tag")
        nested.locator(".segment-row input[type=text]").fill("ギフト、存在しないタグ")
        nested.locator(".segment-add-condition").click()
        nested.locator(".segment-row").nth(1).locator("select").nth(0).select_option("claimant")
        nested.locator("select").first.select_option("any")
        expect(count).to_have_text("2")  # nobody has the tags; nobody is a claimant

        page.fill("#id_name", "東京の常連")
        page.locator("input[name=_save]").click()
        page.wait_for_url(live_server.url + CHANGELIST)
        browser.close()

    segment = Segment.objects.get(name="東京の常連")
    assert segment.rule == rule_of(
        cond("order_count", "gte", 2),
        cond("prefecture", "in", ["東京都"]),
        rule_of(
            cond("tag", "has_any", ["ギフト", "存在しないタグ"]),
            cond("claimant", "is", True),
            match="any",
        ),
    )
    assert segment.created_by == marketer


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs playwright and a chromium")
@pytest.mark.django_db(transaction=True)
def test_editing_the_json_redraws_the_builder(live_server, client, browser_marketer, customers):
    marketer = browser_marketer
    from playwright.sync_api import expect, sync_playwright

    segment = segment_make("東京の常連", TOKYO_REPEATERS)
    client.force_login(marketer)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium())
        context = browser.new_context(locale="ja-JP")
        context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )
        page = context.new_page()
        page.goto(live_server.url + change_url(segment))
        builder = page.locator("#segment-builder")
        expect(builder.locator(".segment-row")).to_have_count(2)
        expect(page.locator("#segment-preview-count")).to_have_text("2")

        page.fill("#id_rule", json.dumps(rule_of(cond("prefecture", "in", ["大阪府"]))))
        expect(builder.locator(".segment-row")).to_have_count(1)
        expect(builder.get_by_label("大阪府")).to_be_checked()
        expect(page.locator("#segment-preview-count")).to_have_text("1")

        # JSON the builder cannot draw stays as it is, with a note; the count says why
        page.fill("#id_rule", '{"match": "all", "conditions": [{"field": "shoe_size"}]}')
        expect(builder.locator(".segment-row")).to_have_count(0)
        expect(builder.locator("p.help")).to_be_visible()
        expect(page.locator("#segment-preview-errors")).to_contain_text("条件 1 の項目")
        browser.close()


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs playwright and a chromium")
@pytest.mark.django_db(transaction=True)
def test_a_new_untouched_condition_is_not_marked_as_an_error(
    live_server, client, browser_marketer, customers
):
    from playwright.sync_api import expect, sync_playwright

    client.force_login(browser_marketer)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    with sync_playwright() as playwright:
        browser, page = builder_page(playwright, live_server, session)
        builder = page.locator("#segment-builder")
        count = page.locator("#segment-preview-count")

        def preview_answer(status):
            return page.expect_response(lambda r: "preview" in r.url and r.status == status)

        # when the marketer adds a condition and has not filled it in yet
        with preview_answer(400):  # the server does find the empty value
            builder.locator(".segment-add-condition").first.click()
        # then its empty value is no mistake: no red row, no message
        expect(count).to_have_text("—")
        expect(builder.locator(".segment-row.errors")).to_have_count(0)
        expect(page.locator("#segment-preview-errors li")).to_have_count(0)

        # when she fills it in and adds a second condition, untouched
        row = builder.locator(".segment-row").nth(0)
        row.locator("select").nth(1).select_option("gte")
        row.locator("input[type=number]").fill("2")
        expect(count).to_have_text("3")
        with preview_answer(200), preview_answer(400):
            builder.locator(".segment-add-condition").first.click()
        # then the first one is counted without it, and the new one is not red
        expect(count).to_have_text("3")
        expect(builder.locator(".segment-row")).to_have_count(2)
        expect(builder.locator(".segment-row.errors")).to_have_count(0)
        expect(page.locator("#segment-preview-errors li")).to_have_count(0)

        # a value she typed wrong is still shown on its row
        row.locator("input[type=number]").fill("-1")
        expect(page.locator("#segment-preview-errors li")).to_contain_text("条件 1 の値")
        expect(builder.locator(".segment-row.errors")).to_have_count(1)
        browser.close()
