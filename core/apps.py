from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in
        from django.db.models.signals import post_migrate

        import core.lookups  # noqa: F401  (registers field__any_of)
        from core.schedules import schedules_sync

        post_migrate.connect(schedules_sync, sender=self)
        from core.middleware import session_login_stamp

        user_logged_in.connect(session_login_stamp, dispatch_uid="session_login_stamp")
