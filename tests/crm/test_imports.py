"""CSV import of customers and orders (crm.imports): encodings, presets,
identity resolution, per-line errors, idempotency, dry run, consent."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command

from core.models import AuditAction, AuditEntry
from crm.imports.reading import csv_decode
from crm.imports.runner import import_errors_csv, import_job_create, import_job_run
from crm.models import (
    ChannelIdentity,
    ConsentEvent,
    ConsentSource,
    ConsentState,
    Customer,
    CustomerChannelProfile,
    CustomerEvent,
    ImportJob,
    ImportPreset,
    ImportStatus,
    LifecycleSegment,
    Order,
    OrderLine,
    OrderStatus,
)
from crm.services import customer_erase, lifecycle_recompute
from tests.crm import factories

FIXTURES = Path(__file__).parent / "fixtures"
RAKUTEN = FIXTURES / "rakuten_orders_cp932.csv"
OWN_SITE = FIXTURES / "own_site_orders_utf8_bom.csv"


pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("import_media")]


@pytest.fixture
def hanako():
    """An own-site customer the Rakuten file's buyer 佐藤花子 is, by email."""
    return factories.customer(
        channel="own_site",
        external_id="M0000009",
        family_name="佐藤",
        given_name="花子",
        email="hanako.sato@example.jp",
    )


def run(path: Path, preset: str, actor, *, dry_run: bool = False):
    job = import_job_create(
        content=path.read_bytes(),
        file_name=path.name,
        preset=preset,
        dry_run=dry_run,
        actor=actor,
    )
    return import_job_run(job_id=job.pk)


def snapshot() -> dict:
    """Everything an import could write, counted."""
    return {
        "customers": Customer.objects.count(),
        "identities": ChannelIdentity.objects.count(),
        "orders": Order.objects.count(),
        "lines": sorted(OrderLine.objects.values_list("id", flat=True)),
        "events": CustomerEvent.objects.count(),
        "consents": ConsentEvent.objects.count(),
        "orders_updated": sorted(Order.objects.values_list("updated_at", flat=True)),
        "customers_updated": sorted(Customer.objects.values_list("updated_at", flat=True)),
    }


def test_cp932_and_bom_files_are_read_with_their_extended_characters():
    text, encoding = csv_decode(RAKUTEN.read_bytes())
    assert encoding == "cp932"
    assert "髙橋" in text and "㈱" in text and "①" in text
    text, encoding = csv_decode(OWN_SITE.read_bytes())
    assert encoding == "utf-8-sig"
    assert text.startswith("注文番号")
    text, encoding = csv_decode("氏名\n髙橋\n".encode())
    assert (text, encoding) == ("氏名\n髙橋\n", "utf-8")


def test_rakuten_file_imports_its_orders_and_merges_a_buyer_by_email(import_marketer, hanako):
    job = run(RAKUTEN, ImportPreset.RAKUTEN, import_marketer)

    assert job.status == ImportStatus.DONE
    assert job.encoding == "cp932"
    orders = {o.order_number: o for o in Order.objects.select_related("customer")}
    assert sorted(orders) == [
        "338761-20240501-0000000001",
        "338761-20240502-0000000002",
        "338761-20240506-0000000006",
    ]
    first = orders["338761-20240501-0000000001"]
    assert first.channel == "rakuten"
    assert first.total == 5400
    assert first.status == OrderStatus.SHIPPED
    assert first.ordered_at.isoformat() == "2024-05-01T01:15:00+00:00"  # 10:15 in Tokyo
    assert [
        (line.sku, line.name, line.quantity, line.unit_price) for line in first.lines.all()
    ] == [
        ("TEA-SENCHA-100", "静岡煎茶 100g", 2, 1200),
        ("TEA-MATCHA-30", "抹茶 ①番摘み 30g", 1, 3000),
    ]
    buyer = first.customer
    assert (buyer.family_name, buyer.given_name) == ("髙橋", "一郎")
    assert buyer.address == "渋谷区神宮前1-2-3 ㈱髙橋商店①号室"
    assert (buyer.postal_code, buyer.prefecture, buyer.phone) == (
        "150-0001",
        "東京都",
        "03-1234-5678",
    )
    assert orders["338761-20240506-0000000006"].customer == buyer
    assert orders["338761-20240506-0000000006"].status == OrderStatus.CANCELLED
    # 佐藤花子 bought on Rakuten with her own-site email: the same customer,
    # now with a Rakuten identity.
    assert orders["338761-20240502-0000000002"].customer == hanako
    assert hanako.identities.filter(channel="rakuten").exists()
    assert Customer.objects.count() == 2
    buyer.refresh_from_db()
    assert (buyer.order_count, buyer.lifecycle_segment) == (1, LifecycleSegment.SLEEPING)
    assert job.counts == {
        "customers_created": 1,
        "customers_updated": 1,
        "customers_unchanged": 0,
        "orders_created": 3,
        "orders_updated": 0,
        "orders_unchanged": 0,
        "consents_recorded": 0,
        "rows_rejected": 4,
    }
    # No consent column: no consent recorded for anybody.
    assert not ConsentEvent.objects.exists()


def test_rejected_rows_name_their_lines_and_reasons_in_japanese(import_marketer, hanako):
    job = run(RAKUTEN, ImportPreset.RAKUTEN, import_marketer)

    errors = {error.line: error.reason for error in job.row_errors.all()}
    assert sorted(errors) == [5, 6, 7, 8]
    assert "注文日時" in errors[5] and "2024/13/45" in errors[5]
    assert "合計" in errors[6] and "-99999" in errors[6]
    assert "合計" in errors[7]
    assert "謎の状態" in errors[8]


def test_importing_the_same_files_twice_changes_nothing(import_marketer, hanako):
    run(RAKUTEN, ImportPreset.RAKUTEN, import_marketer)
    run(OWN_SITE, ImportPreset.OWN_SITE, import_marketer)
    before = snapshot()

    again = run(RAKUTEN, ImportPreset.RAKUTEN, import_marketer)
    own_again = run(OWN_SITE, ImportPreset.OWN_SITE, import_marketer)

    assert snapshot() == before
    assert again.counts["customers_unchanged"] == 2
    assert again.counts["orders_unchanged"] == 3
    assert again.counts["orders_created"] == again.counts["orders_updated"] == 0
    assert own_again.counts["consents_recorded"] == 0
    assert own_again.counts["orders_unchanged"] == 2


def test_own_site_bom_file_records_consent_only_from_its_consent_column(import_marketer):
    job = run(OWN_SITE, ImportPreset.OWN_SITE, import_marketer)

    assert job.encoding == "utf-8-sig"
    assert sorted(Order.objects.values_list("order_number", flat=True)) == ["W-1001", "W-1004"]
    errors = {error.line: error.reason for error in job.row_errors.all()}
    assert sorted(errors) == [3, 4]
    assert "メールアドレス" in errors[3]
    assert "数量" in errors[4] and "abc" in errors[4]
    jiro = Customer.objects.get(email="jiro@example.jp")
    event = ConsentEvent.objects.get()
    assert event.customer == jiro
    assert (event.action, event.source, event.wording_version) == (
        "opt_in",
        ConsentSource.IMPORT,
        "2024-04",
    )
    assert ConsentState.objects.get(customer=jiro, channel="email").granted
    # 渡辺愛 left the column empty: nothing recorded for her.
    assert not ConsentEvent.objects.filter(customer__email="ai@example.jp").exists()
    assert job.counts["consents_recorded"] == 1


def test_a_consent_column_without_its_wording_fails_the_file(import_marketer):
    content = "channel,external_id,email,email_consent\nown_site,M1,a@example.jp,1\n"
    job = import_job_create(
        content=content.encode(),
        file_name="customers.csv",
        preset=ImportPreset.CUSTOMERS,
        dry_run=False,
        actor=import_marketer,
    )
    job = import_job_run(job_id=job.pk)

    assert job.status == ImportStatus.FAILED
    assert "consent_wording_version" in job.failure
    assert not Customer.objects.exists() and not ConsentEvent.objects.exists()


def test_customers_file_in_the_own_format_creates_and_tags(import_marketer):
    content = (
        "channel,external_id,family_name,given_name,email,phone,prefecture,birthday,tags\n"
        "own_site,M1,山本,一,ichi@example.jp,090-1234-5678,京都府,1990-04-01,VIP|茶会\n"
        "own_site,,名無,し,,,,,\n"
        "own_site,M2,木村,二,ni@example.jp,,沖縄,,\n"
    )
    job = import_job_create(
        content=content.encode(),
        file_name="customers.csv",
        preset=ImportPreset.CUSTOMERS,
        dry_run=False,
        actor=import_marketer,
    )
    job = import_job_run(job_id=job.pk)

    customer = Customer.objects.get()
    assert (customer.family_name, str(customer.birthday)) == ("山本", "1990-04-01")
    assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "茶会"]
    errors = {error.line: error.reason for error in job.row_errors.all()}
    assert sorted(errors) == [3, 4]
    assert "沖縄" in errors[4]


def test_a_dry_run_counts_what_would_happen_and_writes_nothing(import_marketer, hanako):
    before = snapshot()

    job = run(RAKUTEN, ImportPreset.RAKUTEN, import_marketer, dry_run=True)

    assert snapshot() == before
    assert job.status == ImportStatus.DONE
    assert job.counts["customers_created"] == 1
    assert job.counts["customers_updated"] == 1
    assert job.counts["orders_created"] == 3
    assert sorted(job.row_errors.values_list("line", flat=True)) == [5, 6, 7, 8]


def test_the_error_csv_holds_each_refused_row_with_its_line_in_the_files_encoding(
    import_marketer, hanako
):
    job = run(RAKUTEN, ImportPreset.RAKUTEN, import_marketer)

    content, content_type = import_errors_csv(job)

    assert "shift_jis" in content_type
    rows = list(csv.reader(io.StringIO(content.decode("cp932"))))
    assert rows[0][0] == "受注番号" and rows[0][-2:] == ["行", "エラーの理由"]
    assert [row[-2] for row in rows[1:]] == ["5", "6", "7", "8"]
    assert rows[1][:5] == [
        "338761-20240503-0000000003",
        "発送待ち",
        "与信済",
        "2024/13/45",
        "09:00:00",
    ]
    assert "髙橋" in rows[2][13]
    own = run(OWN_SITE, ImportPreset.OWN_SITE, import_marketer)
    content, content_type = import_errors_csv(own)
    assert content.startswith(b"\xef\xbb\xbf") and "utf-8" in content_type


def test_only_managers_and_marketers_import(colleague):
    with pytest.raises(PermissionDenied):
        import_job_create(
            content=b"a\n1\n", file_name="x.csv", preset="customers", dry_run=False, actor=colleague
        )


def test_an_import_is_recorded_in_the_audit_trail(import_marketer):
    run(OWN_SITE, ImportPreset.OWN_SITE, import_marketer)

    entry = AuditEntry.objects.get(action=AuditAction.IMPORT)
    assert entry.user == import_marketer
    assert OWN_SITE.name in entry.what


def test_a_job_runs_once(import_marketer):
    job = run(OWN_SITE, ImportPreset.OWN_SITE, import_marketer)

    assert import_job_run(job_id=job.pk) is None
    assert Order.objects.count() == 2


def test_the_import_csv_command_dry_runs_then_imports_a_file(db, hanako):
    out = io.StringIO()
    call_command("import_csv", str(RAKUTEN), "--preset", "rakuten", "--dry-run", stdout=out)

    assert not Order.objects.exists()
    assert "orders_created: 3" in out.getvalue()
    assert "line 5:" in out.getvalue()

    call_command("import_csv", str(RAKUTEN), "--preset", "rakuten", stdout=io.StringIO())

    assert Order.objects.count() == 3
    assert ImportJob.objects.filter(created_by=None).count() == 2


def crm_state() -> dict:
    """Every row an import writes, without ids and times, each customer
    named by their identities."""

    def who(customer_id: int) -> tuple:
        return tuple(
            sorted(
                ChannelIdentity.objects.filter(customer_id=customer_id).values_list(
                    "channel", "external_id"
                )
            )
        )

    customers = sorted(
        (
            who(c.pk),
            c.family_name,
            c.given_name,
            c.family_name_kana,
            c.given_name_kana,
            c.email,
            c.email_normalized,
            c.phone,
            c.phone_normalized,
            c.postal_code,
            c.prefecture,
            c.address,
            c.search_name,
            c.search_kana,
            c.order_count,
            c.total_spent,
            c.lifecycle_segment,
            c.first_order_at,
            c.last_order_at,
        )
        for c in Customer.objects.all()
    )
    identities = sorted(
        ChannelIdentity.objects.values_list("channel", "external_id", "display_name")
    )
    profiles = sorted(
        (who(p.customer_id), p.channel, p.email, p.email_normalized, p.phone, p.address)
        for p in CustomerChannelProfile.objects.all()
    )
    events = sorted(
        (who(e.customer_id), e.kind, str(sorted(e.data.items())), e.actor_id)
        for e in CustomerEvent.objects.all()
    )
    orders = sorted(
        (
            o.channel,
            o.order_number,
            who(o.customer_id),
            o.ordered_at,
            o.total,
            o.status,
            o.shipped_at,
            tuple(o.lines.order_by("id").values_list("sku", "name", "quantity", "unit_price")),
        )
        for o in Order.objects.all()
    )
    consents = sorted(
        (who(e.customer_id), e.channel, e.action, e.source, e.wording_version, e.note, e.actor_id)
        for e in ConsentEvent.objects.all()
    )
    consent_states = sorted(
        (
            who(s.customer_id),
            s.channel,
            s.granted,
            (s.event.action, s.event.source, s.event.wording_version, s.event.note),
        )
        for s in ConsentState.objects.select_related("event")
    )
    return {
        "customers": customers,
        "identities": identities,
        "profiles": profiles,
        "events": events,
        "orders": orders,
        "consents": consents,
        "consent_states": consent_states,
    }


def repeat_buyers_file() -> bytes:
    """Own-format orders: 20 new buyers, each ordering twice, and the 佐藤
    花子 of the hanako fixture by her own-site member id."""
    rows = [
        "channel,order_number,ordered_at,status,total,external_id,email,phone,family_name,sku,product_name,quantity,unit_price"
    ]
    for n in range(20):
        for k in range(2):
            rows.append(
                f"own_site,B-{n:03d}-{k},2025-0{k + 1}-10 10:00,delivered,1200,B{n:04d},"
                f"buyer{n}@example.jp,090-0000-{n:04d},木村,TEA-1,煎茶,1,1200"
            )
    rows.append("own_site,B-HANAKO,2025-03-01 10:00,paid,3240,M0000009,,,,TEA-2,ほうじ茶,1,3240")
    return ("\n".join(rows) + "\n").encode()


def consenting_customers_file() -> bytes:
    """Own-format customers, half of them agreeing to email, some of them
    the buyers of repeat_buyers_file."""
    rows = ["channel,external_id,family_name,email,email_consent,consent_wording_version"]
    for n in range(10, 30):
        rows.append(f"own_site,B{n:04d},木村,buyer{n}@example.jp,{n % 2},2024-04")
    return ("\n".join(rows) + "\n").encode()


def import_all(actor, *, bulk: bool) -> list[dict]:
    """Import the files in turn; their jobs' counts and refused lines."""
    results = []
    for content, name, preset in (
        (consenting_customers_file(), "customers.csv", ImportPreset.CUSTOMERS),
        (repeat_buyers_file(), "repeat.csv", ImportPreset.ORDERS),
        (RAKUTEN.read_bytes(), RAKUTEN.name, ImportPreset.RAKUTEN),
        (OWN_SITE.read_bytes(), OWN_SITE.name, ImportPreset.OWN_SITE),
        (repeat_buyers_file(), "repeat.csv", ImportPreset.ORDERS),
    ):
        job = import_job_create(
            content=content, file_name=name, preset=preset, dry_run=False, actor=actor
        )
        job = import_job_run(job_id=job.pk, bulk=bulk)
        results.append(
            {**job.counts, "refused": list(job.row_errors.values_list("line", "reason"))}
        )
    return results


@pytest.mark.parametrize("bulk", [False, True])
def test_imported_orders_of_yesterday_start_no_journey(import_marketer, bulk):
    # given: the built-in order confirmation and shipping notice are on
    from django.utils import timezone

    from outreach.models import Delivery, SendKind

    yesterday = timezone.localtime() - timezone.timedelta(days=1)
    content = (
        "channel,order_number,ordered_at,status,total,external_id,email,sku,product_name,quantity,unit_price\n"
        f"own_site,Y-1,{yesterday:%Y-%m-%d %H:%M},paid,1200,Y0001,y1@example.jp,TEA-1,煎茶,1,1200\n"
    ).encode()
    job = import_job_create(
        content=content,
        file_name="y.csv",
        preset=ImportPreset.ORDERS,
        dry_run=False,
        actor=import_marketer,
    )
    import_job_run(job_id=job.pk, bulk=bulk)
    # then: the order is there, and no journey step was scheduled for it
    assert Order.objects.filter(order_number="Y-1").exists()
    assert not Delivery.objects.filter(send__kind=SendKind.JOURNEY).exists()


def test_the_bulk_path_leaves_what_the_services_row_by_row_leave(import_marketer, hanako):
    services_results = import_all(import_marketer, bulk=False)
    by_services = crm_state()
    assert len(by_services["orders"]) == 41 + 3 + 2
    assert len(by_services["consents"]) == 20 + 1
    Order.objects.all().delete()
    ConsentState.objects.all().delete()
    ConsentEvent.objects.all().delete()
    Customer.objects.exclude(pk=hanako.pk).delete()
    ChannelIdentity.objects.filter(customer=hanako).exclude(channel="own_site").delete()
    CustomerChannelProfile.objects.filter(customer=hanako).exclude(channel="own_site").delete()
    CustomerEvent.objects.filter(customer=hanako).exclude(kind="created").delete()
    Customer.objects.filter(pk=hanako.pk).update(  # as the fixture made her
        phone="", phone_normalized="", postal_code="", prefecture="", address=""
    )
    lifecycle_recompute()

    bulk_results = import_all(import_marketer, bulk=True)

    by_bulk = crm_state()
    for name, rows in by_services.items():
        assert (name, set(by_bulk[name]) - set(rows), set(rows) - set(by_bulk[name])) == (
            name,
            set(),
            set(),
        )
    assert by_bulk == by_services
    assert bulk_results == services_results


def test_the_bulk_path_reads_fewer_queries_than_row_by_row(
    import_marketer, django_assert_max_num_queries
):
    counts = {}
    for bulk in (False, True):
        job = import_job_create(
            content=repeat_buyers_file(),
            file_name="repeat.csv",
            preset=ImportPreset.ORDERS,
            dry_run=False,
            actor=import_marketer,
        )
        with django_assert_max_num_queries(10_000) as captured:
            job = import_job_run(job_id=job.pk, bulk=bulk)
        counts[bulk] = len(captured.captured_queries)
        assert job.counts["orders_created"] == 41
        Order.objects.all().delete()
        Customer.objects.all().delete()
    assert counts[True] * 3 < counts[False]


def test_the_uploaded_file_is_deleted_once_the_import_has_run(import_marketer, import_media):
    job = run(OWN_SITE, ImportPreset.OWN_SITE, import_marketer)

    assert not job.file
    assert list(Path(import_media).rglob("*.csv")) == []
    # the refused rows stay, for the error CSV
    assert job.row_errors.count() == 2


def test_erasing_a_person_blanks_the_refused_rows_that_hold_their_email(
    import_marketer, hanako, owner
):
    job = run(RAKUTEN, ImportPreset.RAKUTEN, import_marketer)
    theirs = job.row_errors.get(line=5)  # 佐藤花子's refused order
    assert "Hanako.Sato@example.jp" in theirs.row

    customer_erase(customer=hanako, actor=owner, reason="本人からの削除依頼")

    theirs.refresh_from_db()
    assert (theirs.row, theirs.reason) == ({}, "")
    # 佐藤花子 had lines 5 and 8 refused; 髙橋一郎 keeps his (6 and 7)
    assert sorted(job.row_errors.exclude(row={}).values_list("line", flat=True)) == [6, 7]


def test_buyers_their_own_identity_finds_unchanged_go_in_bulk(
    import_marketer, django_assert_max_num_queries
):
    # given: the buyers of repeat_buyers_file, imported
    first = import_job_create(
        content=repeat_buyers_file(),
        file_name="repeat.csv",
        preset=ImportPreset.ORDERS,
        dry_run=False,
        actor=import_marketer,
    )
    import_job_run(job_id=first.pk, bulk=True)
    again = import_job_create(
        content=repeat_buyers_file().replace(b",B-", b",C-"),
        file_name="again.csv",
        preset=ImportPreset.ORDERS,
        dry_run=False,
        actor=import_marketer,
    )

    # when: they order again, each found by their member id with nothing new
    with django_assert_max_num_queries(30):
        job = import_job_run(job_id=again.pk, bulk=True)

    # then: one batch in a few queries, none of them through the services
    assert job.counts["customers_unchanged"] == 21
    assert job.counts["orders_created"] == 41
