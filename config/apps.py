from django.contrib.admin.apps import AdminConfig


class MadoguchiAdminConfig(AdminConfig):
    default_site = "config.admin_site.MadoguchiAdminSite"
