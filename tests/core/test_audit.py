"""The audit trail (監査ログ): every view, change, list, search, export and
erasure of customers' data leaves a row (who, what, which customer, where,
from which address), and nobody can change or delete a row."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from core.api.auth import ApiClient
from core.audit import audit_record
from core.models import ApiScope, AuditAction, AuditEntry
from crm import services as crm_services
from crm.models import CustomerEventKind
from tests.api_client import api_client
from tests.conftest import make_api_key
from tests.crisis.test_suspension_admin import suspension
from tests.crisis.test_suspensions import buyer, delay_email_template
from tests.crm import factories
from tests.crm.test_admin import post_change
from tests.tickets import factories as ticket_factories

pytestmark = pytest.mark.django_db

AUDIT_LOG = reverse("admin:core_auditentry_changelist")
AUDIT_CSV = reverse("admin:core_auditentry_csv")


def ja(text: str) -> str:
    with translation.override("ja"):
        return gettext(text)


def change_page(customer) -> str:
    return reverse("admin:crm_customer_change", args=[customer.pk])


@pytest.fixture
def customer():
    return factories.customer(family_name="監査", given_name="太郎", email="kansa@example.jp")


def only_entry(**filters) -> AuditEntry:
    return AuditEntry.objects.get(**filters)


# --- Append-only -------------------------------------------------------------------


def test_the_database_refuses_to_change_or_delete_an_audit_row(owner, customer):
    entry = audit_record(action=AuditAction.VIEW, actor=owner, customer_id=customer.pk)
    for statement in (
        "UPDATE core_auditentry SET what = 'forged' WHERE id = %s",
        "DELETE FROM core_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(customer_id=None)
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.delete()
    entry.refresh_from_db()
    assert (entry.what, entry.customer_id) == ("", customer.pk)


def test_nobody_adds_changes_or_deletes_audit_rows_in_the_admin(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-1234")
    entry = audit_record(action=AuditAction.VIEW, actor=root)
    client.force_login(root)
    assert client.get(reverse("admin:core_auditentry_add")).status_code == 403
    delete = reverse("admin:core_auditentry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:core_auditentry_change", args=[entry.pk])
    assert client.post(change, {"action": "erase", "what": "forged"}).status_code == 403
    bulk = client.post(AUDIT_LOG, {"action": "delete_selected", "_selected_action": [entry.pk]})
    assert bulk.status_code == 200  # no such action: the list is shown again
    assert AuditEntry.objects.filter(pk=entry.pk, action=AuditAction.VIEW, what="").exists()


# --- What is recorded: the admin --------------------------------------------------------


def test_opening_a_customer_page_records_a_view_with_who_where_and_from_where(
    client, colleague, customer
):
    client.force_login(colleague)
    assert client.get(change_page(customer), REMOTE_ADDR="192.0.2.7").status_code == 200
    entry = only_entry(action=AuditAction.VIEW)
    assert (entry.user, entry.api_key, entry.customer_id) == (colleague, None, customer.pk)
    assert (entry.where, entry.ip) == (change_page(customer), "192.0.2.7")


def test_a_change_through_the_customer_admin_records_the_fields_not_the_values(
    client, owner, customer
):
    client.force_login(owner)
    post_change(client, customer, family_name="田中")
    entry = only_entry(action=AuditAction.CHANGE)
    assert (entry.user, entry.customer_id) == (owner, customer.pk)
    assert entry.what and "田中" not in entry.what


def test_consent_recorded_by_staff_is_a_change(client, colleague, customer):
    client.force_login(colleague)
    client.post(
        reverse("admin:crm_customer_consent", args=[customer.pk]),
        {"channel": "email", "action": "opt_out", "note": "お電話"},
    )
    assert only_entry(action=AuditAction.CHANGE).customer_id == customer.pk


def test_a_customer_list_or_search_records_the_query_once_not_each_row(client, colleague):
    for name in ("山田", "山田", "鈴木"):
        factories.customer(family_name=name)
    client.force_login(colleague)
    customers = reverse("admin:crm_customer_changelist")
    client.get(customers)
    client.get(customers, {"q": "山田", "prefecture": "東京都"})
    listed = only_entry(action=AuditAction.LIST)
    searched = only_entry(action=AuditAction.SEARCH)
    assert (listed.customer_id, listed.what, listed.user) == (None, "", colleague)
    assert searched.customer_id is None
    assert "q=%E5%B1%B1%E7%94%B0" in searched.what and "prefecture=" in searched.what
    assert AuditEntry.objects.count() == 2


def test_the_inbox_records_its_query_not_its_rows(client, colleague, customer):
    for _ in range(3):
        ticket_factories.inquiry(customer=customer)
    client.force_login(colleague)
    inbox = reverse("admin:tickets_inquiry_changelist")
    assert client.get(inbox, {"q": "監査"}).status_code == 200
    entry = only_entry()
    assert (entry.action, entry.customer_id, entry.user) == (AuditAction.SEARCH, None, colleague)
    assert "q=%E7%9B%A3%E6%9F%BB" in entry.what


def test_opening_an_inquiry_page_records_a_view_of_its_customer(client, colleague, customer):
    inquiry = ticket_factories.inquiry(customer=customer)
    client.force_login(colleague)
    url = reverse("admin:tickets_inquiry_change", args=[inquiry.pk])
    assert client.get(url).status_code == 200
    entry = only_entry(action=AuditAction.VIEW)
    assert (entry.customer_id, entry.where, entry.user) == (customer.pk, url, colleague)


def test_an_export_and_an_erasure_from_the_admin_are_recorded_with_the_reason(
    client, owner, customer
):
    client.force_login(owner)
    client.post(
        reverse("admin:crm_customer_privacy_export", args=[customer.pk]),
        {"reason": "本人の開示請求", "output": "download"},
    )
    erase = reverse("admin:crm_customer_privacy_erase", args=[customer.pk])
    client.post(erase, {"reason": "本人の削除請求"})
    exported = only_entry(action=AuditAction.EXPORT)
    erased = only_entry(action=AuditAction.ERASE)
    assert (exported.user, exported.customer_id, exported.what) == (
        owner,
        customer.pk,
        "本人の開示請求",
    )
    assert (erased.user, erased.customer_id, erased.where) == (owner, customer.pk, erase)


def test_a_csv_export_of_customers_orders_records_what_it_held(client, owner):
    buyer(channel="rakuten", email="waiting@example.jp")
    buyer(channel="rakuten", email="other@example.jp")
    record = suspension(owner, email_template=delay_email_template())
    client.force_login(owner)
    url = reverse("admin:crisis_suspension_orders_csv", args=[record.pk])
    assert client.get(url).status_code == 200
    entry = only_entry(action=AuditAction.EXPORT)
    assert (entry.user, entry.customer_id, entry.where) == (owner, None, url)
    assert f"#{record.pk}" in entry.what and entry.what.endswith(": 2")


# --- What is recorded: the API ------------------------------------------------------------


def test_reading_one_customer_through_the_api_is_a_view_by_the_key(customer):
    key, secret = make_api_key(scope=ApiScope.READ)
    client = api_client(secret)
    assert client.get(f"/api/v1/customers/{customer.pk}/").status_code == 200
    assert client.get(f"/api/v1/customers/{customer.pk}/orders/").status_code == 200
    views = AuditEntry.objects.filter(action=AuditAction.VIEW, customer_id=customer.pk)
    assert [(entry.api_key, entry.user) for entry in views] == [(key, None)] * 2


def test_an_api_list_and_search_record_the_query(customer):
    key, secret = make_api_key(scope=ApiScope.READ)
    client = api_client(secret)
    client.get("/api/v1/customers/")
    client.get("/api/v1/customers/", {"q": "kansa@example.jp", "page_size": "10"})
    assert only_entry(action=AuditAction.LIST).api_key == key
    assert only_entry(action=AuditAction.SEARCH).what == "q=kansa%40example.jp"


def test_an_api_export_and_erasure_are_recorded_with_the_key(customer):
    key, secret = make_api_key(scope=ApiScope.PRIVACY)
    client = api_client(secret)
    url = f"/api/v1/customers/{customer.pk}/personal-data/"
    assert client.get(url, {"reason": "開示請求"}).status_code == 200
    assert client.post(f"{url}erase/", {"reason": "削除請求"}, format="json").status_code == 200
    rows = AuditEntry.objects.filter(customer_id=customer.pk).order_by("id")
    assert [(row.action, row.api_key, row.user) for row in rows] == [
        (AuditAction.EXPORT, key, None),
        (AuditAction.ERASE, key, None),
    ]


# --- Reading the trail --------------------------------------------------------------------


def test_only_managers_read_the_audit_log(client, owner, colleague):
    audit_record(action=AuditAction.VIEW, actor=colleague)
    client.force_login(colleague)
    assert client.get(AUDIT_LOG).status_code == 403
    assert client.get(AUDIT_CSV).status_code == 403
    client.force_login(owner)
    assert client.get(AUDIT_LOG).status_code == 200


def test_the_audit_log_filters_by_person_customer_action_and_date(client, owner, colleague):
    one, other = factories.customer(), factories.customer()
    audit_record(action=AuditAction.VIEW, actor=colleague, customer_id=one.pk)
    audit_record(action=AuditAction.EXPORT, actor=owner, customer_id=other.pk)
    client.force_login(owner)

    def shown(**params) -> list[tuple[str, int | None]]:
        response = client.get(AUDIT_LOG, params)
        return [(e.action, e.customer_id) for e in response.context["cl"].result_list]

    assert shown(customer=one.pk) == [(AuditAction.VIEW, one.pk)]
    assert shown(action__exact="export") == [(AuditAction.EXPORT, other.pk)]
    assert shown(user=colleague.pk) == [(AuditAction.VIEW, one.pk)]
    today = timezone.localtime(AuditEntry.objects.first().at)
    assert len(shown(at__year=today.year, at__month=today.month, at__day=today.day)) == 2
    assert shown(at__year=today.year - 1) == []


def test_the_audit_log_names_staff_and_pages_in_words_not_logins_and_paths(
    client, owner, colleague, customer
):
    client.force_login(colleague)
    client.get(change_page(customer))
    client.force_login(owner)
    with translation.override("ja"):
        page = client.get(AUDIT_LOG, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert f"顧客 #{customer.pk} 画面" in page
    assert f">{change_page(customer)}<" not in page  # linked, not shown as text
    # the staff filter lists names (佐藤), not login names
    assert ">佐藤<" in page.replace("</a>", "<")
    assert colleague.get_username() not in page


def test_the_audit_log_changelist_query_count_does_not_grow_with_rows(
    client, owner, colleague, django_assert_num_queries
):
    key, _secret = make_api_key()
    client.force_login(owner)
    client.get(AUDIT_LOG)  # warm the content-type cache

    def add(count: int) -> None:
        for _ in range(count):
            audit_record(action=AuditAction.VIEW, actor=colleague)
            audit_record(action=AuditAction.LIST, actor=ApiClient(key))

    add(3)
    # session, user, staff filter choices, page count, permissions (2), rows
    # with their person and key, the incident banner
    with django_assert_num_queries(8):
        response = client.get(AUDIT_LOG)
    assert len(response.context["cl"].result_list) == 6
    add(5)
    with django_assert_num_queries(8):
        response = client.get(AUDIT_LOG)
    assert len(response.context["cl"].result_list) == 16


def test_the_csv_export_holds_the_filtered_rows_in_japanese_and_is_itself_recorded(
    client, owner, colleague, customer
):
    audit_record(action=AuditAction.VIEW, actor=colleague, customer_id=customer.pk)
    audit_record(action=AuditAction.LIST, actor=colleague)
    client.force_login(owner)
    with translation.override("ja"):
        response = client.get(AUDIT_CSV, {"action__exact": "view"}, HTTP_ACCEPT_LANGUAGE="ja")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == [ja("at"), ja("staff member")]
    assert len(rows) == 2 and rows[1][1] == "佐藤" and rows[1][4] == str(customer.pk)
    assert rows[1][3] == ja("Viewed") and "view" not in rows[1]
    recorded = only_entry(action=AuditAction.EXPORT)
    assert recorded.user == owner and recorded.what.endswith(": 1")


# --- The customer page's 「履歴」 -------------------------------------------------------------


def test_the_history_button_shows_the_trail_and_the_customer_events(client, owner, customer):
    client.force_login(owner)
    crm_services.customer_update(customer=customer, actor=owner, notes="電話が早い")
    client.get(change_page(customer))
    history = reverse("admin:crm_customer_history", args=[customer.pk])
    with translation.override("ja"):
        html = client.get(history, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert ja("Viewed") in html and "店長" in html
    assert ja(CustomerEventKind.UPDATED.label) in html
    assert ja("This object doesn’t have a change history.") not in html


def test_the_history_page_query_count_does_not_grow_with_rows(
    client, owner, colleague, customer, django_assert_num_queries
):
    client.force_login(owner)
    history = reverse("admin:crm_customer_history", args=[customer.pk])
    client.get(history)  # warm the content-type cache

    def add(count: int) -> None:
        for index in range(count):
            audit_record(action=AuditAction.VIEW, actor=colleague, customer_id=customer.pk)
            crm_services.customer_update(
                customer=customer, actor=colleague, notes=f"{count}-{index}"
            )

    add(2)
    # session, user, customer, permissions (2), audit rows with their person
    # and key, events with their actor, the incident banner
    with django_assert_num_queries(8):
        response = client.get(history)
    assert len(response.context["rows"]) == 5  # and the customer's creation
    add(4)
    with django_assert_num_queries(8):
        response = client.get(history)
    assert len(response.context["rows"]) == 13


@pytest.mark.django_db
def test_a_text_kept_as_written_is_shown_as_written_and_only_a_query_is_decoded():
    from core.audit_admin import audit_what

    kept = AuditEntry(action=AuditAction.ERASE, what="期限 2026-11-05T21:20+00:00 / 100%")
    typed = "q=%E5%B1%B1%E7%94%B0+%E5%A4%AA%E9%83%8E&x=1"
    query = AuditEntry(action=AuditAction.SEARCH, what=typed)
    assert audit_what(kept) == "期限 2026-11-05T21:20+00:00 / 100%"
    assert audit_what(query) == "q=山田 太郎 / x=1"
