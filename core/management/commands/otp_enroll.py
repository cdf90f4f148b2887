"""Give a staff member a TOTP device and show the QR code to scan, or
(--backup-codes) ten one-time backup codes, shown once."""

import io

import qrcode
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.services import backup_codes_generate


class Command(BaseCommand):
    help = "Enrol a staff member for the admin's second factor (TOTP) and print the QR code."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="device name")
        parser.add_argument(
            "--replace", action="store_true", help="remove the user's existing TOTP devices first"
        )
        parser.add_argument(
            "--backup-codes",
            action="store_true",
            help="issue ten one-time backup codes instead (replacing earlier ones)",
        )

    def handle(self, *args, username, name, replace, backup_codes, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        if not user.is_staff:
            raise CommandError(f"{username!r} is not staff; the admin second factor is for staff.")
        if backup_codes:
            codes = backup_codes_generate(user=user, actor=None)
            self.stdout.write("Backup codes, each for one login (not shown again):\n")
            self.stdout.write("\n".join(codes) + "\n")
            return
        if replace:
            TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(user=user, name=name, confirmed=True)
        url = device.config_url
        qr = qrcode.QRCode(border=1)
        qr.add_data(url)
        out = io.StringIO()
        qr.print_ascii(out=out, invert=True)
        self.stdout.write(out.getvalue())
        self.stdout.write(f"Scan with an authenticator app, or enter this URL:\n{url}\n")
