from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_PAGE = 10_000_000  # far past any real list; larger numbers would overflow the OFFSET


def _positive_int(raw: str | None, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.lstrip("-").isdigit()):
        raise ValidationError({name: "Must be a whole number."})
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValidationError({name: "Must be a whole number."}) from None
    if value < 1:
        raise ValidationError({name: "Must be at least 1."})
    return value


class PageLimitPagination:
    """`?page=P&limit=L` (L ≤ 100); responds {"results", "count", "page", "limit"}. A page past the
    end is empty, not an error; a limit over 100 is a 400, never silently cut."""

    def bounds(self, request) -> tuple[int, int]:
        """(page, limit) from the query, or a 400 naming the bad one."""
        page = _positive_int(request.query_params.get("page"), "page", 1)
        limit = _positive_int(request.query_params.get("limit"), "limit", DEFAULT_LIMIT)
        if limit > MAX_LIMIT:
            raise ValidationError({"limit": f"Must be at most {MAX_LIMIT}."})
        if page > MAX_PAGE:
            raise ValidationError({"page": f"Must be at most {MAX_PAGE}."})
        return page, limit

    def paginate(self, request, queryset, *, counted_page=None) -> tuple[list, dict]:
        """One page of `queryset` and its meta. `counted_page(offset=, limit=)`, when given, returns the
        page's items and the total from one query (None when the page is empty): for lists whose
        page query reads every match anyway, where a separate COUNT would read them all again."""
        page, limit = self.bounds(request)
        offset = (page - 1) * limit
        if counted_page is not None:
            items, count = counted_page(offset=offset, limit=limit)
            if count is None:
                count = queryset.count() if page > 1 else 0
            return items, {"count": count, "page": page, "limit": limit}
        items = list(queryset[offset : offset + limit])
        count = queryset.count() if (items or page > 1) and not (page == 1 and len(items) < limit) else len(items)
        return items, {"count": count, "page": page, "limit": limit}

    @staticmethod
    def response(results: list, meta: dict) -> Response:
        return Response({"results": results, **meta})
