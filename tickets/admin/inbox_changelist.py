"""The inbox's changelist and paginator: one reverse() a page for the row links,
the count and the unread count in one query (capped for a search), the count-only
changelist inbox_news_view uses, and the counts in words (「未読 3件」, 「1,000件以上」).
"""

from __future__ import annotations

from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext, ngettext

from tickets.models import Inquiry
from tickets.selectors import inbox_counts


class InboxChangeList(ChangeList):
    """The admin's changelist with each row's link built from one reverse()
    a page: Django reverses every row's URL and, with a filter on, parses the
    filters and resolve()s the URL again for every row."""

    PK = "__pk__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The filters go into the link once, here; the row tag finds none left.
        self.row_filters, self.preserved_filters = self.preserved_filters, ""
        self._change_url: tuple[str, str, str] | None = None

    @property
    def unread_text(self) -> str:
        """「未読 3件」: the inquiries of the list as filtered with a customer
        message the agent has not opened (counted with the list, InboxPaginator)."""
        return inbox_unread_text(self.paginator.unread, capped=self.paginator.capped)

    @property
    def result_count_text(self) -> str:
        """「120件」, or 「1,000件以上」 when a search's count stopped at the cap."""
        return search_count_text(self.result_count, capped=self.paginator.capped)

    def url_for_result(self, result) -> str:
        if self._change_url is None:
            url = reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                args=(self.PK,),
                current_app=self.model_admin.admin_site.name,
            )
            url = add_preserved_filters(
                {"preserved_filters": self.row_filters, "opts": self.opts}, url
            )
            self._change_url = url.partition(self.PK)
        before, _pk, after = self._change_url
        return f"{before}{quote(result.pk)}{after}"


class InboxPaginator(Paginator):
    """Counts the inbox as filtered and its unread rows in the same query
    (inbox_counts): the unread count costs no second pass over the rows.
    With a search, up to `cap` (InboxMixin.get_paginator): `capped` says
    there are more."""

    object_list: QuerySet[Inquiry]
    unread = 0
    cap: int | None = None
    capped = False

    @cached_property
    def count(self) -> int:
        counts = inbox_counts(self.object_list, cap=self.cap)
        self.unread, self.capped = counts["unread"], counts["capped"]
        return counts["total"]


class InboxCountChangeList(InboxChangeList):
    """The inbox's filters and search without its page (no row query, no
    count): what inbox_news_view counts in."""

    def get_results(self, request) -> None:
        self.result_count = self.full_result_count = None  # type: ignore[assignment]  # no count on this changelist; the stubs want an int
        self.result_list = []
        self.can_show_all = self.multi_page = False


def inbox_unread_text(count: int, *, capped: bool = False) -> str:
    """「未読 3件」; 「未読 3件以上」 when the count stopped at a search's cap
    (the unread among its first rows)."""
    if capped:
        return gettext("%(count)s or more unread") % {"count": f"{count:,}"}
    return ngettext("%(count)s unread", "%(count)s unread", count) % {"count": f"{count:,}"}


def search_count_text(count: int, *, capped: bool = False) -> str:
    """「120件」; 「1,000件以上」 when a search's count stopped at the cap."""
    if capped:
        return gettext("%(count)s or more inquiries") % {"count": f"{count:,}"}
    return ngettext("%(count)s inquiry", "%(count)s inquiries", count) % {"count": f"{count:,}"}


def inbox_new_text(count: int) -> str:
    return ngettext("%(count)s new — refresh", "%(count)s new — refresh", count) % {
        "count": f"{count:,}"
    }
