"""The CSV file of leads as people download it: its exact text, the list's order and filters, and
exports longer than the chunks the leads are read in."""

import csv
import io

from leads import exports
from leads.exports import leads_export_rows
from leads.models import Lead
from leads.selectors import lead_list
from tests.leads.factories import make_lead
from tests.workspaces.factories import member
from workspaces.models import Role

HEADER = (
    "id,name,first name,last name,email,phone,company,title,department,stage,pipeline,source,owner email,score,"
    "tags,status,lifecycle stage,created at,custom fields\r\n"
)


def listed(workspace, *, sort_by: str, sort_order: str = "asc", **params):
    queryset, errors = lead_list(workspace=workspace, params=params, sort_by=sort_by, sort_order=sort_order)
    assert not errors
    return queryset


def export_text(queryset) -> str:
    return "".join(leads_export_rows(queryset=queryset))


def test_an_export_is_exactly_this_text(workspace):
    owner = member(workspace, role=Role.SALES_REP).user
    ann = make_lead(
        workspace,
        name="Ann Lee",
        email="ann@acme.com",
        phone="+1 415 555 0134",
        company={"name": "Acme, Inc."},
        title='CTO "the boss"',
        department="IT",
        owner=owner,
        tags=["vip", "hot", "beta"],
        custom_fields={"City": "Zürich", "Budget Range": "10k"},
    )
    bob = make_lead(workspace, name="=1+1", email="bob@example.com", title="-lead", department="@ops", tags=["=sum"])
    cid = make_lead(workspace, name="Cid", email="cid@example.com")
    # Two fields shown under one name: the second keeps its key rather than overwrite the first.
    Lead.objects.filter(pk=cid.pk).update(custom_fields={"a": 1, "b": [2], "_displayNames": {"a": "Plan", "b": "Plan"}}, score=-3)
    ann, bob, cid = (Lead.objects.get(pk=lead.pk) for lead in (ann, bob, cid))
    pipeline = ann.pipeline.name

    assert export_text(listed(workspace, sort_by="email")) == (
        HEADER + f'{ann.pk},Ann Lee,Ann,Lee,ann@acme.com,\'+14155550134,"Acme, Inc.","CTO ""the boss""",IT,New,{pipeline},manual,'
        f'{owner.email},0,"beta,hot,vip",new,lead,{ann.created_at.isoformat()},"{{""City"": ""Zürich"", ""Budget Range"": ""10k""}}"\r\n'
        f"{bob.pk},'=1+1,'=1+1,,bob@example.com,,,'-lead,'@ops,New,{pipeline},manual,,0,'=sum,new,lead,{bob.created_at.isoformat()},\r\n"
        f"{cid.pk},Cid,Cid,,cid@example.com,,,,,New,{pipeline},manual,,-3,,new,lead,{cid.created_at.isoformat()},"
        '"{""Plan"": 1, ""b"": [2]}"\r\n'
    )


def test_an_export_of_no_leads_is_the_header_alone(workspace):
    make_lead(workspace, email="ann@example.com")
    assert export_text(listed(workspace, sort_by="email", search="nobody")) == HEADER


def test_a_long_export_keeps_the_lists_order_and_filters_and_each_leads_own_tags(workspace, monkeypatch):
    # Leads are read a chunk at a time, their tags once per chunk: three leads per chunk here.
    monkeypatch.setattr(exports, "EXPORT_CHUNK_SIZE", 3)
    scores = [40, 10, 70, 30, 60, 0, 50, 20]
    leads = []
    for n, score in enumerate(scores):
        tags = [f"t{n}", "vip"] if n % 2 else [f"t{n}"]
        lead = make_lead(workspace, name=f"Lead {n}", email=f"lead{n}@example.com", tags=tags)
        Lead.objects.filter(pk=lead.pk).update(score=score)
        leads.append((score, lead.email, ",".join(tags)))

    def exported(queryset) -> list[tuple]:
        header, *rows = csv.reader(io.StringIO(export_text(queryset)))
        return [(int(row["score"]), row["email"], row["tags"]) for row in (dict(zip(header, cells, strict=True)) for cells in rows)]

    by_score = sorted(leads, reverse=True)
    assert exported(listed(workspace, sort_by="score", sort_order="desc")) == by_score
    # Filtered by one tag, each lead still shows all of its tags.
    assert exported(listed(workspace, sort_by="score", sort_order="desc", tag="vip")) == [lead for lead in by_score if "vip" in lead[2]]
    assert exported(listed(workspace, sort_by="email", sort_order="asc")) == sorted(leads, key=lambda lead: lead[1])


def test_every_text_cell_that_a_spreadsheet_would_run_is_quoted_and_numbers_are_not(workspace):
    lead = make_lead(
        workspace,
        name="+Ann Lee",
        first_name="-Ann",
        last_name="Lee",
        email="ann@example.com",
        company={"name": "@Acme"},
        title="\tCTO",
        department="\rIT",
        tags=["-vip"],
    )
    lead.stage.name = "=Won"
    lead.stage.save(update_fields=["name"])
    Lead.objects.filter(pk=lead.pk).update(score=-5, custom_fields={"=plan": "-gold"})

    header, row = csv.reader(io.StringIO(export_text(Lead.objects.filter(pk=lead.pk))))
    cells = dict(zip(header, row, strict=True))

    assert (cells["name"], cells["first name"], cells["last name"]) == ("'+Ann Lee", "'-Ann", "Lee")
    assert (cells["company"], cells["title"], cells["department"], cells["stage"]) == ("'@Acme", "'\tCTO", "'\rIT", "'=Won")
    assert (cells["tags"], cells["score"], cells["custom fields"]) == ("'-vip", "-5", '{"=plan": "-gold"}')
