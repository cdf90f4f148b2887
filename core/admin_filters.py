"""List filters shared by the admins."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class DefaultingFilter(admin.SimpleListFilter):
    """A filter whose unselected state means `default_title` (the filter's
    own default, e.g. "open" or "me"), not "all"."""

    default_title = _("All")

    def choices(self, changelist):
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": self.default_title,
        }
        for value, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(value),
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": title,
            }
