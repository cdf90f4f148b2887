from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Cursor pagination on the primary key: constant cost on any page of a
    large table (no OFFSET, no COUNT)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 200
