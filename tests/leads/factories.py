import itertools

from leads.models import Lead
from leads.services import lead_create

_counter = itertools.count(1)


def make_lead(workspace, actor=None, **data) -> Lead:
    """Creates a lead through the capture service, as the API and UI do."""
    n = next(_counter)
    data.setdefault("name", f"Lead {n}")
    data.setdefault("email", f"lead{n}@example.com")
    return lead_create(workspace=workspace, actor=actor, data=data)
