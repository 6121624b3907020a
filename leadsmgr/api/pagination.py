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

    def paginate(self, request, queryset) -> tuple[list, dict]:
        page = _positive_int(request.query_params.get("page"), "page", 1)
        limit = _positive_int(request.query_params.get("limit"), "limit", DEFAULT_LIMIT)
        if limit > MAX_LIMIT:
            raise ValidationError({"limit": f"Must be at most {MAX_LIMIT}."})
        if page > MAX_PAGE:
            raise ValidationError({"page": f"Must be at most {MAX_PAGE}."})
        offset = (page - 1) * limit
        items = list(queryset[offset : offset + limit])
        count = queryset.count() if (items or page > 1) and not (page == 1 and len(items) < limit) else len(items)
        return items, {"count": count, "page": page, "limit": limit}

    @staticmethod
    def response(results: list, meta: dict) -> Response:
        return Response({"results": results, **meta})
