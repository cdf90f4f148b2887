"""The CSV import pages: upload, list, one import's page, its progress JSON
and the error CSV; managers and marketers only."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.models import AuditAction, AuditEntry
from crm.imports.runner import import_job_create, import_job_run
from crm.models import ImportJob, ImportPreset, ImportStatus
from tests.crm.test_imports import OWN_SITE, RAKUTEN
from tests.page_text import visible_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("import_media")]


def finished_job(actor) -> ImportJob:
    job = import_job_create(
        content=OWN_SITE.read_bytes(),
        file_name=OWN_SITE.name,
        preset=ImportPreset.OWN_SITE,
        dry_run=False,
        actor=actor,
    )
    return import_job_run(job_id=job.pk)


def test_a_marketer_uploads_a_file_and_lands_on_its_page(client, import_marketer):
    client.force_login(import_marketer)

    response = client.post(
        reverse("admin:crm_importjob_add"),
        {
            "file": SimpleUploadedFile(OWN_SITE.name, OWN_SITE.read_bytes(), "text/csv"),
            "preset": ImportPreset.OWN_SITE,
        },
    )

    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:crm_importjob_change", args=[job.pk])
    assert (job.status, job.created_by, job.dry_run) == (
        ImportStatus.QUEUED,
        import_marketer,
        False,
    )
    assert AuditEntry.objects.get(action=AuditAction.IMPORT).where == reverse(
        "admin:crm_importjob_add"
    )
    page = client.get(response["Location"]).content.decode()
    assert reverse("admin:crm_importjob_progress", args=[job.pk]) in page


def test_an_agent_cannot_open_the_import_pages(client, colleague, import_marketer):
    job = finished_job(import_marketer)
    client.force_login(colleague)

    assert client.get(reverse("admin:crm_importjob_add")).status_code == 403
    assert client.get(reverse("admin:crm_importjob_changelist")).status_code == 403
    assert client.get(reverse("admin:crm_importjob_progress", args=[job.pk])).status_code == 403
    assert client.get(reverse("admin:crm_importjob_errors", args=[job.pk])).status_code == 403


def test_an_imports_page_shows_counts_refused_rows_and_the_error_csv_link(client, import_marketer):
    job = finished_job(import_marketer)
    client.force_login(import_marketer)

    page = client.get(reverse("admin:crm_importjob_change", args=[job.pk])).content.decode()

    assert reverse("admin:crm_importjob_errors", args=[job.pk]) in page
    assert 'data-finished="1"' in page
    assert "メールアドレス" in page  # line 3's reason
    text = visible_text(page).replace(OWN_SITE.name, "")
    assert "own_site" not in text and "rows_rejected" not in text


def test_the_progress_json_says_how_far_the_import_got(client, import_marketer):
    job = finished_job(import_marketer)
    client.force_login(import_marketer)

    data = client.get(reverse("admin:crm_importjob_progress", args=[job.pk])).json()

    assert (data["percent"], data["done"], data["total"], data["finished"]) == (100, 4, 4, True)
    counts = {item["key"]: item["count"] for item in data["counts"]}
    assert counts["orders_created"] == 2 and counts["rows_rejected"] == 2


def test_the_error_csv_downloads_and_is_audited(client, import_marketer):
    job = finished_job(import_marketer)
    client.force_login(import_marketer)

    response = client.get(reverse("admin:crm_importjob_errors", args=[job.pk]))

    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert response.content.decode("utf-8-sig").count("\r\n") == 3  # header + 2 rows
    assert AuditEntry.objects.filter(action=AuditAction.EXPORT).exists()


def test_the_import_list_reads_the_same_queries_for_one_or_four_imports(
    client, import_marketer, django_assert_num_queries, django_assert_max_num_queries
):
    client.force_login(import_marketer)
    url = reverse("admin:crm_importjob_changelist")
    finished_job(import_marketer)
    client.get(url)
    with django_assert_max_num_queries(30) as one:
        client.get(url)
    for _n in range(3):
        finished_job(import_marketer)
    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("own_site_orders_utf8_bom.csv") == 4


def test_an_imports_page_reads_the_same_queries_for_two_or_four_refused_rows(
    client, import_marketer, django_assert_num_queries, django_assert_max_num_queries
):
    two = finished_job(import_marketer)
    four = import_job_run(
        job_id=import_job_create(
            content=RAKUTEN.read_bytes(),
            file_name=RAKUTEN.name,
            preset=ImportPreset.RAKUTEN,
            dry_run=False,
            actor=import_marketer,
        ).pk
    )
    assert (two.row_errors.count(), four.row_errors.count()) == (2, 4)
    client.force_login(import_marketer)
    client.get(reverse("admin:crm_importjob_change", args=[two.pk]))

    with django_assert_max_num_queries(30) as one:
        client.get(reverse("admin:crm_importjob_change", args=[two.pk]))
    with django_assert_num_queries(len(one.captured_queries)):
        client.get(reverse("admin:crm_importjob_change", args=[four.pk]))
