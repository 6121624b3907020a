"""How the API writes values that JSON has no type for."""

from datetime import datetime


def iso_time(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as DRF's DateTimeField writes it; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value else None
