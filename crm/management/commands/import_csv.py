"""manage.py import_csv <file> --preset rakuten [--dry-run]: a CSV import
run here rather than in the worker, for files too big to upload."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.imports.presets import PRESETS
from crm.imports.runner import import_job_create, import_job_run
from crm.models import ImportStatus


class Command(BaseCommand):
    help = "Import customers or orders from a CSV file (CP932 or UTF-8)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would happen, write nothing"
        )

    def handle(self, *args, file: Path, preset: str, dry_run: bool, **options):
        try:
            content = file.read_bytes()
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from None
        job = import_job_create(
            content=content,
            file_name=file.name,
            preset=preset,
            dry_run=dry_run,
            actor=None,
            enqueue=False,
        )
        ran = import_job_run(job_id=job.pk)
        assert ran is not None  # the job just created
        job = ran
        if job.status == ImportStatus.FAILED:
            raise CommandError(job.failure)
        for name, count in job.counts.items():
            self.stdout.write(f"{name}: {count}")
        for row_error in job.row_errors.all()[:50]:
            self.stdout.write(f"line {row_error.line}: {row_error.reason}")
        self.stdout.write(f"import #{job.pk}: {job.get_status_display()}")
