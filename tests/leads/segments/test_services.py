"""Segment services: the baseline fill on create and on new criteria, the whole-segment refresh and the
incremental one for a few leads, their enter/exit history, the preview, and the hooks that keep membership
current as leads change (capture, field and tag changes, tracked events)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from leads.models import ActivityType, Company, Lead, LeadActivity
from leads.segments.models import Segment, SegmentEvent, SegmentEventKind, SegmentMembership
from leads.segments.services import (
    lead_segments_refresh,
    leads_reevaluate,
    segment_delete,
    segment_preview,
    segment_refresh,
    segment_update,
)
from leads.services import lead_delete, lead_tags_change, lead_update
from tests.leads.segments.factories import SCORE_50, committed, enterprise_lead, lead, make_segment, member_ids, track

pytestmark = pytest.mark.django_db

GERMANY = {"all": [{"field": "country", "operator": "eq", "value": "DE"}]}


def events_of(segment, **filters) -> list[tuple]:
    return [
        (event.lead_id, event.kind, event.reason)
        for event in SegmentEvent.objects.filter(segment=segment, **filters).order_by("kind", "lead__name")
    ]


def tags_of(target: Lead) -> set[str]:
    return set(target.tags.values_list("name", flat=True))


# Baselines: creating a segment, changing its criteria


def test_a_new_segment_is_filled_as_a_baseline_without_enter_events_or_automations(workspace):
    hot = enterprise_lead(workspace, "Ada Hot")
    warm = enterprise_lead(workspace, "Bo Warm", title="")
    assert (hot.score, warm.score) == (55, 35)

    before = timezone.now()
    segment = make_segment(workspace, SCORE_50, automation={"onEnter": [{"action": "tag", "tags": ["vip"]}]})

    assert member_ids(segment) == {hot.pk}
    assert segment.member_count == 1
    assert before <= segment.last_refreshed_at <= timezone.now()
    assert segment.next_refresh_at == segment.last_refreshed_at + timedelta(hours=1)
    assert SegmentMembership.objects.get(segment=segment).entered_at == segment.last_refreshed_at
    # Nobody "entered": the leads did nothing new, so no history and no automation ran.
    assert not SegmentEvent.objects.filter(segment=segment).exists()
    assert tags_of(hot) == set()
    assert not LeadActivity.objects.filter(type=ActivityType.SEGMENT_ACTIONS).exists()


def test_new_criteria_are_a_new_baseline_and_other_edits_leave_membership_alone(workspace):
    hot = enterprise_lead(workspace, "Ada Hot")
    warm = enterprise_lead(workspace, "Bo Warm", title="")
    segment = make_segment(workspace, SCORE_50, automation={"onEnter": [{"action": "tag", "tags": ["vip"]}], "onExit": []})
    first_refresh = segment.last_refreshed_at

    with committed():
        renamed = segment_update(segment=segment, name="  Hot leads  ", description="Score 50+")
    assert (renamed.name, renamed.description) == ("Hot leads", "Score 50+")
    assert renamed.last_refreshed_at == first_refresh
    assert member_ids(renamed) == {hot.pk}

    with committed():
        updated = segment_update(segment=renamed, criteria={"all": [{"field": "score", "operator": "lt", "value": 50}]})

    assert member_ids(updated) == {warm.pk}
    assert updated.member_count == 1
    assert updated.last_refreshed_at > first_refresh
    assert not SegmentEvent.objects.filter(segment=segment).exists()
    assert tags_of(warm) == set() and tags_of(hot) == set()


def test_segment_names_are_required_and_criteria_are_validated_on_update(workspace):
    from django.core.exceptions import ValidationError

    segment = make_segment(workspace, SCORE_50)
    with pytest.raises(ValidationError) as raised:
        segment_update(segment=segment, name="  ")
    assert set(raised.value.message_dict) == {"name"}
    with pytest.raises(ValidationError) as raised:
        segment_update(segment=segment, criteria={"all": [{"field": "score", "operator": "within", "value": "14d"}]})
    assert set(raised.value.message_dict) == {"criteria.all[0].operator"}
    segment.refresh_from_db()
    assert segment.criteria == SCORE_50


# The whole-segment refresh


def test_a_refresh_records_who_entered_and_who_left_with_time_and_reason(workspace):
    leaving = lead(workspace, name="Lea Ving", country="DE")
    coming = lead(workspace, name="Cole Ming", country="FR")
    staying = lead(workspace, name="Stay Put", country="DE")
    segment = make_segment(workspace, GERMANY)
    assert member_ids(segment) == {leaving.pk, staying.pk}
    stayed_since = SegmentMembership.objects.get(segment=segment, lead=staying).entered_at
    # Written behind the services' back (a data fix in SQL): only a refresh notices.
    Lead.objects.filter(pk=leaving.pk).update(country="FR")
    Lead.objects.filter(pk=coming.pk).update(country="DE")

    at = timezone.now() + timedelta(minutes=5)
    with committed():
        assert segment_refresh(segment_id=segment.pk, now=at, reason="scheduled refresh") == (1, 1)

    assert member_ids(segment) == {coming.pk, staying.pk}
    assert events_of(segment) == [
        (coming.pk, SegmentEventKind.ENTERED, "scheduled refresh"),
        (leaving.pk, SegmentEventKind.EXITED, "scheduled refresh"),
    ]
    assert set(SegmentEvent.objects.filter(segment=segment).values_list("at", flat=True)) == {at}
    assert SegmentMembership.objects.get(segment=segment, lead=coming).entered_at == at
    assert SegmentMembership.objects.get(segment=segment, lead=staying).entered_at == stayed_since
    segment.refresh_from_db()
    assert segment.member_count == 2
    assert segment.last_refreshed_at == at
    assert segment.next_refresh_at == at + timedelta(hours=1)

    # Nothing changed since: nothing is recorded again.
    assert segment_refresh(segment_id=segment.pk, now=at + timedelta(minutes=1)) == (0, 0)
    assert SegmentEvent.objects.filter(segment=segment).count() == 2


def test_one_refresh_moves_many_leads_in_and_out_and_runs_both_automations(workspace):
    leaving = [lead(workspace, name=f"Lea Ving {n}", country="DE") for n in range(3)]
    coming = [lead(workspace, name=f"Cole Ming {n}", country="FR") for n in range(3)]
    staying = lead(workspace, name="Stay Put", country="DE")
    automation = {"onEnter": [{"action": "tag", "tags": ["germany"]}], "onExit": [{"action": "tag", "tags": ["left germany"]}]}
    segment = make_segment(workspace, GERMANY, automation=automation)
    Lead.objects.filter(pk__in=[member.pk for member in leaving]).update(country="FR")
    Lead.objects.filter(pk__in=[newcomer.pk for newcomer in coming]).update(country="DE")

    with committed():
        assert segment_refresh(segment_id=segment.pk, reason="scheduled refresh") == (3, 3)

    assert member_ids(segment) == {staying.pk, *(newcomer.pk for newcomer in coming)}
    assert events_of(segment, kind=SegmentEventKind.ENTERED) == [
        (newcomer.pk, SegmentEventKind.ENTERED, "scheduled refresh") for newcomer in coming
    ]
    assert events_of(segment, kind=SegmentEventKind.EXITED) == [
        (member.pk, SegmentEventKind.EXITED, "scheduled refresh") for member in leaving
    ]
    assert [tags_of(newcomer) for newcomer in coming] == [{"germany"}] * 3
    assert [tags_of(member) for member in leaving] == [{"left germany"}] * 3
    assert tags_of(staying) == set()
    segment.refresh_from_db()
    assert segment.member_count == 4


def test_a_refresh_of_a_deleted_segment_does_nothing(workspace):
    segment = make_segment(workspace, SCORE_50)
    segment_id = segment.pk
    segment_delete(segment=segment)
    assert segment_refresh(segment_id=segment_id) == (0, 0)


def test_deleting_a_segment_removes_its_membership_and_history_but_not_its_leads(workspace):
    member = lead(workspace, name="Dee Member", country="DE")
    segment = make_segment(workspace, GERMANY)
    Lead.objects.filter(pk=member.pk).update(country="FR")
    segment_refresh(segment_id=segment.pk)
    assert SegmentEvent.objects.filter(segment=segment).count() == 1

    segment_delete(segment=segment)

    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert not SegmentMembership.objects.filter(segment_id=segment.pk).exists()
    assert not SegmentEvent.objects.filter(segment_id=segment.pk).exists()
    assert Lead.objects.filter(pk=member.pk, deleted_at__isnull=True).exists()


def test_a_deleted_lead_has_left_before_the_next_refresh(workspace):
    gone = lead(workspace, name="Gone Soon", country="DE")
    segment = make_segment(workspace, GERMANY)
    with committed():
        lead_delete(lead=gone, actor=None)

    assert member_ids(segment) == set()
    assert segment_refresh(segment_id=segment.pk, reason="refresh") == (0, 0)


# The incremental refresh for a few leads


def test_an_incremental_refresh_touches_only_the_given_leads_in_every_segment_of_their_workspace(workspace, other_workspace):
    first = lead(workspace, name="First One", country="FR")
    second = lead(workspace, name="Second One", country="FR")
    germany = make_segment(workspace, GERMANY)
    everyone = make_segment(workspace, {"all": [{"field": "country", "operator": "exists"}]})
    foreign = make_segment(other_workspace, {"all": []})
    Lead.objects.filter(pk__in=[first.pk, second.pk]).update(country="DE")

    at = timezone.now()
    changes = lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[str(first.pk), first.pk], reason="import fix", now=at)

    assert changes == {germany.pk: (1, 0)}
    assert member_ids(germany) == {first.pk}
    assert events_of(germany) == [(first.pk, SegmentEventKind.ENTERED, "import fix")]
    assert SegmentEvent.objects.get(segment=germany).at == at
    assert member_ids(everyone) == {first.pk, second.pk}
    assert not SegmentEvent.objects.filter(segment=everyone).exists()
    germany.refresh_from_db()
    assert germany.member_count == 1
    # The other workspace's segment matches everything, yet never takes this workspace's leads.
    assert member_ids(foreign) == set()

    Lead.objects.filter(pk=first.pk).update(country="FR")
    assert lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[first.pk], reason="import fix") == {germany.pk: (0, 1)}
    germany.refresh_from_db()
    assert (member_ids(germany), germany.member_count) == (set(), 0)
    assert lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[], reason="nothing") == {}


def test_an_incremental_refresh_moves_one_lead_in_and_another_out_at_once(workspace):
    leaving = lead(workspace, name="Lea Ving", country="DE")
    unasked = lead(workspace, name="Not Asked", country="DE")
    coming = lead(workspace, name="Cole Ming", country="FR")
    segment = make_segment(workspace, GERMANY)
    Lead.objects.filter(pk__in=[leaving.pk, unasked.pk]).update(country="FR")
    Lead.objects.filter(pk=coming.pk).update(country="DE")

    changes = lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[leaving.pk, coming.pk], reason="import fix")

    assert changes == {segment.pk: (1, 1)}
    # A lead it was not asked about stays until a whole refresh notices.
    assert member_ids(segment) == {coming.pk, unasked.pk}
    assert events_of(segment) == [
        (coming.pk, SegmentEventKind.ENTERED, "import fix"),
        (leaving.pk, SegmentEventKind.EXITED, "import fix"),
    ]
    segment.refresh_from_db()
    assert segment.member_count == 2


def test_leads_from_another_workspace_never_enter_a_segment(workspace, other_workspace):
    ours = lead(workspace, name="Our Lead", country="DE")
    theirs = lead(other_workspace, name="Their Lead", country="DE")
    segment = make_segment(workspace, GERMANY)
    assert member_ids(segment) == {ours.pk}

    assert lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[theirs.pk], reason="x") == {}
    assert lead_segments_refresh(workspace_id=other_workspace.pk, lead_ids=[theirs.pk], reason="x") == {}
    segment_refresh(segment_id=segment.pk)
    assert member_ids(segment) == {ours.pk}
    assert segment_preview(workspace=workspace, criteria=GERMANY)["count"] == 1


def test_reevaluating_a_lead_rescores_it_before_its_segments(workspace):
    target = enterprise_lead(workspace, "Ada Enriched", industry="")
    assert target.score == 40
    segment = make_segment(workspace, SCORE_50)
    assert member_ids(segment) == set()
    # Enrichment wrote the company's industry directly: the score is stale until the lead is re-evaluated.
    Company.objects.filter(pk=target.company_id).update(industry="Software")

    with committed():
        leads_reevaluate(workspace_id=workspace.pk, lead_ids=[target.pk], reason="company enriched")

    target.refresh_from_db()
    assert target.score == 55
    assert member_ids(segment) == {target.pk}
    assert events_of(segment) == [(target.pk, SegmentEventKind.ENTERED, "company enriched")]


# Preview


def test_preview_counts_and_lists_the_best_scored_first_and_saves_nothing(workspace):
    enterprise_lead(workspace, "Ada Top", size="500-1000")
    enterprise_lead(workspace, "Bo Mid", size="150")
    enterprise_lead(workspace, "Cy Low", title="")
    segments, memberships = Segment.objects.count(), SegmentMembership.objects.count()

    preview = segment_preview(workspace=workspace, criteria={"all": [{"field": "score", "operator": "gte", "value": 40}]})

    assert preview["count"] == 2
    assert [(member.name, member.score) for member in preview["members"]] == [("Ada Top", 55), ("Bo Mid", 50)]
    assert (Segment.objects.count(), SegmentMembership.objects.count()) == (segments, memberships)
    assert segment_preview(workspace=workspace, criteria={"all": []}, limit=1)["count"] == 3
    assert len(segment_preview(workspace=workspace, criteria={"all": []}, limit=1)["members"]) == 1
    saved = make_segment(workspace, {"all": [{"field": "score", "operator": "gte", "value": 40}]})
    assert saved.member_count == preview["count"]


# Hooks: membership follows the lead as it changes


def test_a_captured_lead_enters_matching_segments_as_it_is_processed(workspace):
    segment = make_segment(workspace, SCORE_50)

    captured = enterprise_lead(workspace, "Cap Tured")

    assert member_ids(segment) == {captured.pk}
    assert events_of(segment) == [(captured.pk, SegmentEventKind.ENTERED, "captured")]
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_a_field_change_through_the_service_moves_the_lead_in_once_committed(workspace):
    target = enterprise_lead(workspace, "Fi Eld", title="Intern")
    segment = make_segment(workspace, SCORE_50)
    assert member_ids(segment) == set()

    with committed():
        lead_update(lead=target, actor=None, data={"title": "CEO"})

    assert member_ids(segment) == {target.pk}
    assert events_of(segment) == [(target.pk, SegmentEventKind.ENTERED, "fields changed")]


def test_adding_the_competitor_tag_takes_the_lead_out_of_the_seed_exclusions(workspace, api):
    from tests.leads.segments.factories import SEED_CRITERIA

    target = enterprise_lead(workspace, "Com Petitor")
    track(api, target, "demo_requested")
    segment = make_segment(workspace, SEED_CRITERIA)
    assert member_ids(segment) == {target.pk}

    with committed():
        lead_tags_change(lead=target, actor=None, add=["Competitor"])

    assert member_ids(segment) == set()
    assert events_of(segment) == [(target.pk, SegmentEventKind.EXITED, "tags changed")]
    segment.refresh_from_db()
    assert segment.member_count == 0

    with committed():
        lead_tags_change(lead=target, actor=None, remove=["competitor"])
    assert member_ids(segment) == {target.pk}


@pytest.mark.django_db(transaction=True)
def test_a_tracked_event_moves_the_lead_in_within_the_track_request(workspace, api):
    target = enterprise_lead(workspace, "Tra Cked", title="")
    segment = make_segment(workspace, {"all": [{"field": "events.demo_requested", "operator": "exists"}, SCORE_50["all"][0]]})
    assert target.score == 35 and member_ids(segment) == set()

    response = api.post(
        "/api/v1/track",
        {"events": [{"type": "event", "name": "demo_requested", "leadId": str(target.pk)}]},
        format="json",
        HTTP_USER_AGENT="acme-backend/1.0",
    )

    assert response.status_code == 202
    # Answered: the event is processed, the lead rescored (35 + 25) and in the segment.
    target.refresh_from_db()
    assert target.score == 60
    assert member_ids(segment) == {target.pk}
    assert events_of(segment) == [(target.pk, SegmentEventKind.ENTERED, "new activity")]


def test_assigning_an_owner_moves_the_lead_into_an_owner_segment(workspace, user):
    from leads.services import lead_assign
    from tests.workspaces.factories import member

    member(workspace, user=user)
    target = lead(workspace, name="Own Me")
    segment = make_segment(workspace, {"all": [{"field": "owner", "operator": "eq", "value": user.pk}]})

    with committed():
        lead_assign(lead=target, owner=user, actor=None)

    assert member_ids(segment) == {target.pk}


def test_deleting_a_lead_takes_it_out_of_its_segments_at_once(workspace):
    gone = lead(workspace, name="Gone Now", country="DE")
    segment = make_segment(workspace, GERMANY)

    with committed():
        lead_delete(lead=gone, actor=None)

    segment.refresh_from_db()
    assert segment.member_count == 0


# PostgreSQL: concurrency


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_lead_record_one_entry(workspace):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes writers and has no row locks to race on")
    target = lead(workspace, name="Ra Ce", country="FR")
    segment = make_segment(workspace, GERMANY)
    Lead.objects.filter(pk=target.pk).update(country="DE")
    threads_count = 6
    barrier = threading.Barrier(threads_count)
    results, errors = [], []

    def refresh():
        try:
            barrier.wait(timeout=30)
            results.append(lead_segments_refresh(workspace_id=workspace.pk, lead_ids=[target.pk], reason="race"))
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sorted(results, key=len) == [{}] * (threads_count - 1) + [{segment.pk: (1, 0)}]
    assert events_of(segment) == [(target.pk, SegmentEventKind.ENTERED, "race")]
    segment.refresh_from_db()
    assert (member_ids(segment), segment.member_count) == ({target.pk}, 1)
