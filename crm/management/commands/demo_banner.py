"""`manage.py demo_banner`: where to go and how to log in, for `make run`."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import DatabaseError

from crm.management.commands.demo_data import DEMO_PASSWORD, DEMO_USERS

RULE = "═" * 72


def _width(text: str) -> int:
    """Columns the text takes in a terminal (kanji and kana take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - _width(text))


def mail_dir_display() -> str:
    mail_dir = Path(settings.VAR_DIR) / "mail"
    try:
        return f"{mail_dir.relative_to(Path(settings.BASE_DIR))}/"
    except ValueError:
        return f"{mail_dir}/"


class Command(BaseCommand):
    help = "Print the demo URLs, where sent mail goes, and the demo logins."

    def handle(self, *args, **options) -> None:
        site = settings.SITE_URL
        existing = self._existing_usernames()
        rows = [
            ("管理画面 / Admin", f"{site}/admin/"),
            ("API ドキュメント / API docs", f"{site}/api/docs/"),
            (
                "送信メール / Sent mail",
                f"{mail_dir_display()}  (.eml, 1 通 1 ファイル / one file per message)",
            ),
            ("", f"SMTP {settings.EMAIL_HOST}:{settings.EMAIL_PORT} → 上記フォルダ / that folder"),
            ("LINE (模擬 / fake)", f"{settings.LINE_API_HOST}  (manage.py line_fake)"),
        ]
        label_width = max(_width(label) for label, _value in rows) + 2
        out = self.stdout.write
        out(RULE)
        out(self.style.SUCCESS(" 窓口 Madoguchi — デモ環境 / demo"))
        out(RULE)
        for label, value in rows:
            out(f" {_pad(label, label_width)}{value}")
        out("")
        out(" デモ用ログイン / Demo logins")
        header = ("ユーザー名 / user", "パスワード / password", "役割 / role")
        widths = (20, 24)
        out(f"   {_pad(header[0], widths[0])}{_pad(header[1], widths[1])}{header[2]}")
        for user in DEMO_USERS:
            missing = (
                "" if existing is None or user.username in existing else "  (未作成 / missing)"
            )
            out(
                f"   {_pad(user.username, widths[0])}{_pad(DEMO_PASSWORD, widths[1])}"
                f"{user.role_ja} / {user.role_en}{missing}"
            )
        out("")
        out(" 二段階認証はデモでは無効です。本番では次のコマンドで登録します:")
        out(" Two-factor login is off in the demo; in production enrol staff with:")
        out("   manage.py otp_enroll <ユーザー名 / username>")
        out(" 作り直すには / to start over:  make clean && make run")
        out(" 止めるには Ctrl+C / Ctrl+C stops the web server, the worker, the SMTP sink and LINE.")
        out(RULE)

    @staticmethod
    def _existing_usernames() -> set[str] | None:
        """The demo usernames that exist, or None when the database cannot say."""
        names = [user.username for user in DEMO_USERS]
        try:
            return set(
                get_user_model()
                .objects.filter(username__in=names)
                .values_list("username", flat=True)
            )
        except DatabaseError:
            return None
