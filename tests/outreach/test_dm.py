"""Postal DM (郵送DM): a campaign on the DM channel is sent by downloading its
address list for the print shop. The list holds exactly the consented,
reachable customers of the segment, each other one skipped in the ledger
with its reason; the file reads as CP932 and as UTF-8 with a BOM; the
first export records the recipients sent, once; results and attribution
work as for email; the worker never sends a DM."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.models import AuditAction, AuditEntry
from crm import services as crm
from crm.models import Customer
from outreach import services
from outreach.demo import demo_dm_campaign_ensure
from outreach.dispatch import send_dispatch
from outreach.dm import CP932, cp932_fit, dm_csv
from outreach.models import (
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    MessageTemplate,
    Segment,
    SegmentKind,
    Send,
    SkipReason,
)
from outreach.selectors import dm_labels, results_for_campaign
from tests.crm import factories
from tests.outreach.test_campaign_admin import (
    _no_quiet_hours,  # noqa: F401 (autouse fixture)
    change_url,
    marketer,  # noqa: F401 (fixture)
    segment,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.django_db

ADDRESS = {"postal_code": "150-0001", "prefecture": "東京都", "address": "渋谷区神宮前1-2-3"}
COLUMNS = ["郵便番号", "住所", "宛名", "顧客番号", "備考"]


@pytest.fixture
def buyers() -> Segment:
    """Everyone who ordered, claimants too (the lifecycle segments leave
    them out before consent is asked)."""
    return Segment.objects.create(
        name="購入者",
        kind=SegmentKind.CUSTOM,
        rule={"match": "all", "conditions": [{"field": "order_count", "op": "gte", "value": 1}]},
    )


def dm_customer(*, consent: bool = True, **profile) -> Customer:
    """A new customer (one order) with a full postal address, opted in to
    postal DM unless `consent` is False."""
    for key, value in ADDRESS.items():
        profile.setdefault(key, value)
    customer = factories.customer(**profile)
    factories.order(customer=customer)
    if consent:
        crm.consent_record(customer=customer, channel="dm", action="opt_in", source="store")
    return customer


def dm_campaign(segment, **fields) -> Campaign:  # noqa: F811
    return services.campaign_save(
        campaign=None,
        name=fields.pop("name", "春のカタログ"),
        channel="dm",
        template=None,
        segment=segment,
        **fields,
    )


def export_url(campaign: Campaign, file: str) -> str:
    return reverse("admin:outreach_campaign_dm_export", args=[campaign.pk, file])


def csv_rows(content: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode(encoding))))


def ledger(campaign: Campaign) -> dict[int, tuple[str, str]]:
    campaign.refresh_from_db()
    return {
        row.customer_id: (row.status, row.skip_reason)
        for row in Delivery.objects.filter(send_id=campaign.send_id)
    }


# --- Who is on the list ---------------------------------------------------------------------


def test_the_list_holds_exactly_the_consented_reachable_customers_and_skips_the_rest_with_why(
    buyers,
    marketer,  # noqa: F811
):
    reachable = [dm_customer(), dm_customer(family_name="髙橋")]
    no_consent = dm_customer(consent=False)
    email_only = dm_customer(consent=False)
    crm.consent_record(customer=email_only, channel="email", action="opt_in", source="web_form")
    withdrawn = dm_customer()
    crm.consent_withdraw(customer=withdrawn, channel="dm", source="staff", note="電話で")
    claimant = dm_customer()
    crm.customer_claimant_set(customer=claimant, reason="度重なる苦情", actor=marketer)
    returned = dm_customer(postal_code="100-0001", prefecture="東京都", address="千代田区千代田1-1")
    crm.suppression_add(
        address="100-0001東京都千代田区千代田1-1",
        channel="dm",
        reason="staff",
        note="宛所不明で返送",
    )
    no_address = dm_customer(postal_code="", prefecture="", address="")
    no_street = dm_customer(address="")
    no_postal_code = dm_customer(postal_code="")
    no_name = dm_customer(family_name="", given_name="")
    campaign = dm_campaign(buyers)

    campaign, sent = services.campaign_dm_export(campaign=campaign, actor=marketer)

    assert sent == 2
    assert ledger(campaign) == {
        **{c.pk: (DeliveryStatus.SENT, "") for c in reachable},
        no_consent.pk: (DeliveryStatus.SKIPPED, SkipReason.NO_CONSENT),
        email_only.pk: (DeliveryStatus.SKIPPED, SkipReason.NO_CONSENT),
        withdrawn.pk: (DeliveryStatus.SKIPPED, SkipReason.UNSUBSCRIBED),
        claimant.pk: (DeliveryStatus.SKIPPED, SkipReason.CLAIMANT),
        returned.pk: (DeliveryStatus.SKIPPED, SkipReason.SUPPRESSED),
        no_address.pk: (DeliveryStatus.SKIPPED, SkipReason.NO_ADDRESS),
        no_street.pk: (DeliveryStatus.SKIPPED, SkipReason.ADDRESS_PARTIAL),
        no_postal_code.pk: (DeliveryStatus.SKIPPED, SkipReason.ADDRESS_PARTIAL),
        no_name.pk: (DeliveryStatus.SKIPPED, SkipReason.ADDRESS_PARTIAL),
    }
    labels = list(dm_labels(send=campaign.send))
    assert sorted(label.customer_id for label in labels) == sorted(c.pk for c in reachable)
    assert campaign.status == CampaignStatus.COMPLETED
    assert campaign.send.status == "completed"


def test_a_lifted_suppression_puts_the_address_back_on_the_list(segment, marketer):  # noqa: F811
    customer = dm_customer()
    suppression = crm.suppression_add(
        address="150-0001東京都渋谷区神宮前1-2-3", channel="dm", reason="staff", note="返送"
    )
    crm.suppression_lift(suppression=suppression, note="住所を確認", actor=marketer)

    campaign, sent = services.campaign_dm_export(campaign=dm_campaign(segment), actor=marketer)

    assert sent == 1 and ledger(campaign) == {customer.pk: (DeliveryStatus.SENT, "")}


def test_the_campaign_page_shows_the_skips_with_their_reasons(
    client,
    segment,  # noqa: F811
    marketer,  # noqa: F811
):
    dm_customer()
    dm_customer(address="")
    campaign, _sent = services.campaign_dm_export(campaign=dm_campaign(segment), actor=marketer)
    client.force_login(marketer)

    page = client.get(change_url(campaign)).content.decode()

    assert f"{SkipReason.ADDRESS_PARTIAL.label}: 1" in page
    # sent by the download: no message template, no send time to show
    assert "form-row field-template" not in page
    assert "form-row field-scheduled_at" not in page


# --- The file -------------------------------------------------------------------------------


def test_the_file_reads_as_cp932_and_as_utf8_with_a_bom_with_the_labels_columns(
    client,
    segment,  # noqa: F811
    marketer,  # noqa: F811
):
    rare = dm_customer(
        family_name="髙橋",
        given_name="①子",
        postal_code="530-0001",
        prefecture="大阪府",
        address="大阪市北区梅田1-1 ㈱梅田ビル〜3F",
    )
    emoji = dm_customer(family_name="佐藤", given_name="花子😀", postal_code="060-0001")
    campaign = dm_campaign(segment)
    client.force_login(marketer)

    cp932 = client.post(export_url(campaign, "cp932"))
    utf8 = client.post(export_url(campaign, "utf8"))

    assert cp932.status_code == utf8.status_code == 200
    assert cp932["Content-Type"] == "text/csv; charset=windows-31j"
    assert "attachment" in cp932["Content-Disposition"]
    assert utf8.content.startswith("\ufeff".encode())
    # by postal code: Sapporo (060) before Osaka (530)
    assert csv_rows(cp932.content, CP932) == [
        COLUMNS,
        ["060-0001", "東京都渋谷区神宮前1-2-3", "佐藤 花子〓 様", str(emoji.pk),
         "Shift_JISで印刷できない文字を〓に置き換えました: U+1F600"],
        ["530-0001", "大阪府大阪市北区梅田1-1 ㈱梅田ビル～3F", "髙橋 ①子 様", str(rare.pk), ""],
    ]  # fmt: skip
    assert csv_rows(utf8.content, "utf-8-sig") == [
        COLUMNS,
        ["060-0001", "東京都渋谷区神宮前1-2-3", "佐藤 花子😀 様", str(emoji.pk), ""],
        ["530-0001", "大阪府大阪市北区梅田1-1 ㈱梅田ビル〜3F", "髙橋 ①子 様", str(rare.pk), ""],
    ]


def test_cp932_keeps_its_own_characters_and_replaces_only_what_it_cannot_hold():
    assert cp932_fit("髙①㈱ｶﾅ") == ("髙①㈱ｶﾅ", [])
    assert cp932_fit("〜−") == ("～－", [])  # the JIS twins CP932 writes its own way
    assert cp932_fit("👍🏻️ab") == ("〓〓ab", ["👍", "🏻"])  # the variation selector dropped
    assert cp932_fit("𠮷野") == ("〓野", ["𠮷"])


def test_an_unknown_encoding_is_refused_and_not_exported(client, segment, marketer):  # noqa: F811
    dm_customer()
    campaign = dm_campaign(segment)
    client.force_login(marketer)

    assert client.post(export_url(campaign, "latin1")).status_code == 404
    assert client.get(export_url(campaign, "cp932")).status_code == 405
    with pytest.raises(ValueError):
        dm_csv([], encoding="latin-1")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not Delivery.objects.exists()


# --- Once -----------------------------------------------------------------------------------


def test_a_second_export_adds_nobody_twice_and_gives_the_same_file(
    client,
    segment,  # noqa: F811
    marketer,  # noqa: F811
):
    first_customer = dm_customer()
    dm_customer(family_name="髙橋")
    campaign = dm_campaign(segment, holdout_percent=0)
    client.force_login(marketer)
    first = client.post(export_url(campaign, "cp932"))
    rows_before = list(Delivery.objects.values_list("pk", "status", "sent_at", "address"))
    # Meanwhile a customer joins the segment and another moves house.
    dm_customer(family_name="新井")
    crm.customer_update(customer=first_customer, address="港区六本木1-1", actor=marketer)

    again = client.post(export_url(campaign, "cp932"))

    assert again.content == first.content
    assert list(Delivery.objects.values_list("pk", "status", "sent_at", "address")) == rows_before
    assert Send.objects.count() == 1
    events = CampaignEvent.objects.filter(campaign=campaign).values_list("kind", flat=True)
    assert list(events).count(CampaignEventKind.LAUNCHED) == 1
    exports = AuditEntry.objects.filter(action=AuditAction.EXPORT, user=marketer)
    assert exports.count() == 2  # each download is in the audit trail
    assert "postal DM address list" in exports.first().what


def test_two_exports_at_once_record_the_recipients_once(segment, marketer):  # noqa: F811
    dm_customer()
    campaign = dm_campaign(segment)

    _campaign, first = services.campaign_dm_export(campaign=campaign, actor=marketer)
    _campaign, second = services.campaign_dm_export(campaign=campaign, actor=marketer)

    assert (first, second) == (1, 0)
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 1


# --- Never the worker -----------------------------------------------------------------------


def test_a_dm_is_never_launched_scheduled_tested_nor_sent_by_the_worker(
    segment,  # noqa: F811
    marketer,  # noqa: F811
):
    customer = dm_customer()
    campaign = dm_campaign(segment)
    with pytest.raises(ValidationError):
        services.campaign_launch(campaign=campaign, actor=marketer)
    with pytest.raises(ValidationError):
        services.campaign_schedule(
            campaign=campaign, at=timezone.now() + timedelta(days=1), actor=marketer
        )
    with pytest.raises(ValidationError):
        services.campaign_test_send(campaign=campaign, customer=customer, actor=marketer)
    assert not Send.objects.exists()
    # A DM send with a queued row (as no export leaves one) is not the worker's.
    send = services.send_create(
        kind="campaign", channel="dm", purpose="marketing", content={"dm": "x"}
    )
    row = Delivery.objects.create(send=send, customer=customer, channel="dm")

    report = send_dispatch(send_id=send.pk)

    row.refresh_from_db()
    assert (report.batches, row.status, row.attempts) == (0, DeliveryStatus.QUEUED, 0)


def test_a_dm_campaign_has_no_template_and_another_channel_needs_one(segment):  # noqa: F811
    template = services.template_save(
        template=MessageTemplate(
            name="冬", channel="email", purpose="marketing", subject="冬", body_text="本文"
        )
    )
    with pytest.raises(ValidationError):
        services.campaign_save(
            campaign=None, name="DM", channel="dm", template=template, segment=segment
        )
    with pytest.raises(ValidationError):
        services.campaign_save(
            campaign=None, name="メール", channel="email", template=None, segment=segment
        )
    assert dm_campaign(segment).template is None


def test_the_campaign_form_saves_a_dm_without_a_template(client, segment, marketer):  # noqa: F811
    client.force_login(marketer)

    response = client.post(
        reverse("admin:outreach_campaign_add"),
        {"name": "春のカタログ", "channel": "dm", "segment": segment.pk, "holdout_percent": "10"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get()
    assert (campaign.channel, campaign.template, campaign.holdout_percent) == ("dm", None, 10)


# --- Results --------------------------------------------------------------------------------


def test_results_show_dm_recipients_and_their_attributed_orders_against_the_holdout(
    segment,  # noqa: F811
    marketer,  # noqa: F811
):
    customers = [dm_customer() for _ in range(4)]
    campaign = dm_campaign(segment, holdout_percent=50)
    exported_at = timezone.now() - timedelta(days=2)
    campaign, sent = services.campaign_dm_export(campaign=campaign, actor=marketer, now=exported_at)
    rows = ledger(campaign)
    recipients = [c for c in customers if rows[c.pk] == (DeliveryStatus.SENT, "")]
    held = [c for c in customers if rows[c.pk] == (DeliveryStatus.SKIPPED, SkipReason.HOLDOUT)]
    assert (sent, len(recipients), len(held)) == (2, 2, 2)
    factories.order(customer=recipients[0], total=12000, ordered_at=exported_at + timedelta(days=1))
    factories.order(customer=held[0], total=3000, ordered_at=exported_at + timedelta(days=1))
    factories.order(customer=recipients[1], total=9999, ordered_at=exported_at - timedelta(days=1))

    results = results_for_campaign(campaign)

    assert (results.recipients.members, results.recipients.orders) == (2, 1)
    assert results.recipients.revenue == 12000
    assert (results.holdout.members, results.holdout.orders, results.holdout.revenue) == (
        2,
        1,
        3000,
    )


# --- Cost and who may -----------------------------------------------------------------------


def _export_queries(client, campaign: Campaign) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(export_url(campaign, "cp932"))
    assert response.status_code == 200
    return len(queries)


def test_the_export_takes_as_many_queries_for_many_recipients_as_for_few(
    client,
    segment,  # noqa: F811
    marketer,  # noqa: F811
):
    client.force_login(marketer)
    dm_customer()
    few = _export_queries(client, dm_campaign(segment, name="少し"))
    for _ in range(6):
        dm_customer()
    many = _export_queries(client, dm_campaign(segment, name="たくさん"))

    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 1 + 7
    assert many == few


def test_an_agent_cannot_export_and_an_outsider_is_sent_to_login(
    client,
    colleague,
    outsider,
    segment,  # noqa: F811
):
    dm_customer()
    campaign = dm_campaign(segment)

    client.force_login(colleague)
    assert client.post(export_url(campaign, "cp932")).status_code == 403
    client.force_login(outsider)
    response = client.post(export_url(campaign, "utf8"))
    assert response.status_code == 302 and "/login/" in response.url
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT and not Delivery.objects.exists()


def test_the_campaign_page_offers_the_downloads_to_a_marketer_only_for_a_dm(
    client,
    segment,  # noqa: F811
    marketer,  # noqa: F811
):
    dm_customer()
    campaign = dm_campaign(segment)
    client.force_login(marketer)

    page = client.get(change_url(campaign)).content.decode()

    assert "宛名リストをダウンロード (CP932)" in page
    assert "宛名リストをダウンロード (UTF-8)" in page
    assert export_url(campaign, "cp932") in page
    assert "今すぐ送信" not in page and "テスト送信" not in page


def test_the_demo_has_one_dm_campaign_to_those_who_opted_in(marketer):  # noqa: F811
    member = dm_customer()
    dm_customer(consent=False)
    first = demo_dm_campaign_ensure(actor=marketer)
    again = demo_dm_campaign_ensure(actor=marketer)

    assert first.pk == again.pk and Campaign.objects.filter(channel="dm").count() == 1
    assert (first.status, first.template) == (CampaignStatus.DRAFT, None)
    campaign, sent = services.campaign_dm_export(campaign=first, actor=marketer)
    assert sent == 1 and ledger(campaign) == {member.pk: (DeliveryStatus.SENT, "")}
