"""What a sales rep does on the board, in a real browser."""

import re

from playwright.sync_api import expect

from leads.models import ActivityType, Contact, Lead, LeadActivity, Note
from pipelines.models import Stage
from tests.e2e.conftest import card, column
from tests.leads.factories import make_lead
from workspaces.models import Role


def stage(workspace, name):
    return Stage.objects.get(workspace=workspace, pipeline__is_default=True, name=name)


def test_login_shows_the_workspace_board(page, login, e2e_workspace):
    make_lead(e2e_workspace, name="Jane Doe", company={"name": "Acme Corp"}, tags=["hot"])
    login(e2e_workspace)
    expect(page.get_by_test_id("workspace-name")).to_have_text(e2e_workspace.name)
    expect(page.locator("section.column h2")).to_have_text(["New", "Contacted", "Qualified", "Proposal", "Won", "Lost"])
    new = column(page, "New")
    expect(new.locator(".count")).to_have_text("1")
    expect(new.locator(".lead-card")).to_contain_text(["Jane Doe"])
    expect(new.locator(".lead-card .company")).to_have_text("Acme Corp")
    expect(new.locator(".lead-card .tag")).to_have_text("hot")


def test_drag_a_card_to_another_column_is_saved_and_survives_reload(page, login, e2e_workspace):
    lead = make_lead(e2e_workspace, name="Drag Me")
    login(e2e_workspace, role=Role.SALES_REP)
    page.drag_and_drop(f"#card-{lead.pk}", "section.column[aria-label='Qualified'] ul.cards")
    expect(column(page, "Qualified").locator(".count")).to_have_text("1")
    expect(column(page, "New").locator(".count")).to_have_text("0")

    lead.refresh_from_db()
    assert lead.stage.name == "Qualified"
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.STAGE_MOVED).count() == 1

    page.reload()
    expect(column(page, "Qualified").locator(f"#card-{lead.pk}")).to_be_visible()


def test_a_move_the_server_refuses_puts_the_card_back(page, login, e2e_workspace):
    lead = make_lead(e2e_workspace, name="Gone Soon")
    login(e2e_workspace)
    Lead.objects.filter(pk=lead.pk).update(deleted_at="2026-01-01T00:00:00Z")  # deleted by someone else meanwhile
    page.drag_and_drop(f"#card-{lead.pk}", "section.column[aria-label='Won'] ul.cards")
    expect(page.locator("#toast")).to_be_visible()
    expect(column(page, "New").locator(f"#card-{lead.pk}")).to_be_visible()
    expect(column(page, "Won").locator(".lead-card")).to_have_count(0)
    expect(column(page, "Won").locator(".count")).to_have_text("0")


def test_add_lead_shows_field_errors_then_adds_to_first_stage(page, login, e2e_workspace):
    login(e2e_workspace)
    page.click("#add-lead-button")
    dialog = page.locator("#modal")
    expect(dialog).to_be_visible()
    dialog.locator("#id_email").fill("not-an-email")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator("[data-error-for=name]")).to_be_visible()

    dialog.locator("#id_name").fill("Priya Sharma")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator("[data-error-for=email]")).to_be_visible()
    assert Lead.objects.count() == 0

    dialog.locator("#id_email").fill("priya@initech.com")
    dialog.locator("#id_company").fill("Initech")
    dialog.locator("#id_tags").fill("referral, Enterprise")
    dialog.locator("button[type=submit]").click()
    expect(dialog.locator(".success")).to_contain_text("Priya Sharma")
    expect(column(page, "New").locator(".lead-card")).to_contain_text(["Priya Sharma"])
    lead = Lead.objects.get()
    assert (lead.email, lead.source_type, lead.stage.name) == ("priya@initech.com", "manual", "New")
    assert sorted(lead.tags.values_list("name", flat=True)) == ["enterprise", "referral"]


def test_open_the_drawer_and_add_a_note(page, login, e2e_workspace):
    lead = make_lead(e2e_workspace, name="Noted Lead", custom_fields={"budget_range": "$10k"})
    user = login(e2e_workspace, role=Role.SALES_REP)
    card(page, lead).locator(".card-open").click()
    drawer = page.locator("#drawer")
    expect(drawer.locator("h2")).to_have_text("Noted Lead")
    expect(drawer.locator("#custom-heading + dl")).to_contain_text("budget_range")
    drawer.locator("#note-text").fill("Called, wants pricing")
    drawer.get_by_role("button", name="Add note").click()
    expect(drawer.locator(".note").first).to_contain_text("Called, wants pricing")
    expect(drawer.locator(".note").first).to_contain_text(user.display_name)
    expect(drawer.locator(".timeline")).to_contain_text("Note: Called, wants pricing")
    assert Note.objects.get().author == user


def test_convert_hides_the_button_and_creates_one_contact(page, login, e2e_workspace):
    lead = make_lead(e2e_workspace, name="Convert Me", email="convert@example.com")
    login(e2e_workspace, role=Role.SALES_REP)
    page.on("dialog", lambda dialog: dialog.accept())
    card(page, lead).locator(".card-open").click()
    button = page.get_by_test_id("convert")
    button.dblclick()
    expect(page.get_by_test_id("converted")).to_be_visible()
    expect(page.get_by_test_id("convert")).to_have_count(0)
    assert Contact.objects.filter(workspace=e2e_workspace).count() == 1
    assert LeadActivity.objects.filter(lead=lead, type=ActivityType.CONVERTED).count() == 1


def test_bulk_move_selected_cards(page, login, e2e_workspace):
    leads = [make_lead(e2e_workspace, name=f"Bulk {n}") for n in range(3)]
    login(e2e_workspace)
    page.on("dialog", lambda dialog: dialog.accept())
    for lead in leads[:2]:
        card(page, lead).locator(".card-select").check()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.select_option("#bulk-action", "move_stage")
    page.select_option("#bulk-bar select[name=stage]", label="Proposal")
    page.locator("#bulk-bar button[type=submit]").click()
    expect(column(page, "Proposal").locator(".count")).to_have_text("2")
    expect(column(page, "New").locator(".count")).to_have_text("1")
    assert sorted(Lead.objects.filter(stage__name="Proposal").values_list("name", flat=True)) == ["Bulk 0", "Bulk 1"]


def test_pipeline_settings_reorder_and_remove_a_stage_moving_its_leads(page, login, e2e_workspace, live_server):
    proposal_lead = make_lead(e2e_workspace, name="In Proposal", stage=stage(e2e_workspace, "Proposal"))
    login(e2e_workspace)
    page.get_by_label("Pipeline settings").click()
    expect(page.locator("h1")).to_have_text("Pipeline settings")

    lost_row = page.locator(".stage-row", has=page.locator("input[value='Lost']"))
    lost_row.get_by_role("button", name=re.compile("up")).click()
    proposal_row = page.locator(".stage-row", has=page.locator("input[value='Proposal']"))
    proposal_row.get_by_label("Remove").check()
    proposal_row.locator("select[name^=move_to_]").select_option(label="Qualified")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Pipeline saved")

    names = list(
        Stage.objects.filter(workspace=e2e_workspace, pipeline__is_default=True).order_by("position").values_list("name", flat=True)
    )
    assert names == ["New", "Contacted", "Qualified", "Lost", "Won"]
    proposal_lead.refresh_from_db()
    assert proposal_lead.stage.name == "Qualified"

    page.goto(f"{live_server.url}/leads/")
    expect(page.locator("section.column h2")).to_have_text(["New", "Contacted", "Qualified", "Lost", "Won"])


def test_lead_names_are_shown_as_text_never_as_html(page, login, e2e_workspace):
    hostile = "<img src=x onerror=alert(1)>"
    lead = make_lead(e2e_workspace, name=hostile)
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    login(e2e_workspace)
    expect(card(page, lead).locator(".name")).to_have_text(hostile)
    card(page, lead).locator(".card-open").click()
    expect(page.locator("#drawer h2")).to_have_text(hostile)
    page.locator("#note-text").fill(hostile)
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#drawer .note").first).to_contain_text(hostile)
    expect(page.locator("#drawer .timeline")).to_contain_text(hostile)
    assert page.locator("img[src=x]").count() == 0
    assert alerts == []


def test_a_viewer_cannot_drag_edit_or_configure(page, login, e2e_workspace, live_server):
    lead = make_lead(e2e_workspace, name="Look Only")
    login(e2e_workspace, role=Role.VIEWER)
    expect(page.get_by_label("Pipeline settings")).to_have_count(0)
    expect(page.locator("#add-lead-button")).to_have_count(0)
    page.drag_and_drop(f"#card-{lead.pk}", "section.column[aria-label='Won'] ul.cards")
    expect(column(page, "New").locator(f"#card-{lead.pk}")).to_be_visible()
    expect(page.locator("#toast")).to_be_hidden()  # the card never left: no move was even attempted
    lead.refresh_from_db()
    assert lead.stage.name == "New"

    card(page, lead).locator(".card-open").click()
    expect(page.locator("#drawer h2")).to_have_text("Look Only")
    expect(page.locator("#drawer form")).to_have_count(0)

    # The server refuses what the UI hides.
    token = page.evaluate("() => JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken']")
    response = page.request.post(
        f"{live_server.url}/leads/{lead.pk}/move",
        form={"stage": str(stage(e2e_workspace, "Won").pk)},
        headers={"X-CSRFToken": token},
    )
    assert response.status == 403
    lead.refresh_from_db()
    assert lead.stage.name == "New"


def test_a_long_column_loads_more_cards_on_scroll(page, login, e2e_workspace):
    for n in range(60):
        make_lead(e2e_workspace, name=f"Many {n:02d}")
    login(e2e_workspace)
    new = column(page, "New")
    expect(new.locator(".count")).to_have_text("60")
    expect(new.locator(".lead-card")).to_have_count(50)
    new.locator("li.more").scroll_into_view_if_needed()
    expect(new.locator(".lead-card")).to_have_count(60)
    expect(new.locator("li.more")).to_have_count(0)


def test_password_change_and_logout(page, login, e2e_workspace, live_server):
    user = login(e2e_workspace)
    page.get_by_role("link", name="Password").click()
    page.fill("#id_old_password", "pass-word-123")
    page.fill("#id_new_password1", "a-much-better-secret-42")
    page.fill("#id_new_password2", "a-much-better-secret-42")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator("h1")).to_have_text("Password changed")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile("/accounts/login/"))
    user.refresh_from_db()
    assert user.check_password("a-much-better-secret-42")
