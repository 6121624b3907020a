import os
import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from leads.models import Lead, LeadActivity, Note
from leads.services import lead_assign, lead_create, lead_note_add, lead_stage_move
from leads.tracking.ingest import batch_ingest
from leads.tracking.processing import track_events_process
from leads.tracking.services import tracking_site_ensure
from pipelines.services import pipeline_ensure_default
from workspaces.models import Membership, Role, Workspace
from workspaces.services import membership_set, user_get_or_create, workspace_create

DEMO_SLUG = "demo"
DEMO_USERS = [
    ("admin@example.com", "Ada", "Admin", Role.SUPER_ADMIN),
    ("marketer@example.com", "Mia", "Marketer", Role.MARKETER),
    ("rep1@example.com", "Ravi", "Patel", Role.SALES_REP),
    ("rep2@example.com", "Rosa", "Lopez", Role.SALES_REP),
]
FIRST_NAMES = [
    "Jane",
    "John",
    "Priya",
    "Lucas",
    "Amara",
    "Chen",
    "Sofia",
    "Mateo",
    "Olivia",
    "Noah",
    "Aisha",
    "Hiro",
    "Elena",
    "Omar",
    "Grace",
    "Liam",
    "Yuki",
    "Fatima",
    "Ethan",
    "Zara",
]
LAST_NAMES = [
    "Doe",
    "Smith",
    "Sharma",
    "Müller",
    "Okafor",
    "Wei",
    "García",
    "Rossi",
    "Johnson",
    "Kim",
    "Haddad",
    "Tanaka",
    "Petrova",
    "Ali",
    "Brown",
    "Murphy",
    "Sato",
    "Khan",
    "Walker",
    "Novak",
]
COMPANIES = [
    ("Acme Corp", "acme.com", "50-200", "Technology"),
    ("Globex", "globex.io", "200-1000", "Manufacturing"),
    ("Initech", "initech.com", "10-50", "Software"),
    ("Umbrella Health", "umbrella-health.com", "1000+", "Healthcare"),
    ("Stark Retail", "starkretail.co", "200-1000", "Retail"),
    ("Wayne Finance", "waynefinance.com", "1000+", "Financial Services"),
    ("Hooli", "hooli.xyz", "1000+", "Technology"),
    ("Pied Piper", "piedpiper.com", "10-50", "Software"),
    ("Vandelay Imports", "vandelay.com", "50-200", "Logistics"),
    ("Soylent Foods", "soylent.co", "200-1000", "Food & Beverage"),
]
TITLES = [
    "Marketing Director",
    "VP Sales",
    "CTO",
    "Head of Growth",
    "Operations Manager",
    "CEO",
    "Product Manager",
    "Founder",
    "IT Manager",
    "Procurement Lead",
]
SOURCES = [("webhook", "Landing Page Form"), ("manual", ""), ("import", ""), ("api", ""), ("form", "Demo request"), ("tracking", "")]
TAGS = ["hot", "referral", "enterprise", "smb", "high-intent", "newsletter", "event-2026", "partner"]
NOTES = [
    "Called, left a voicemail. Will try again Thursday.",
    "Interested in the annual plan; asked for a case study.",
    "Budget approved for Q1. Needs security review.",
    "Met at the trade show booth, very engaged.",
    "Wants a demo with their IT team next week.",
    "Currently using a competitor; contract ends in March.",
]
LEAD_COUNT = 200
DEMO_TRACKED_LEADS = 40
DEMO_PAGES = ["/", "/pricing", "/features", "/case-studies", "/docs", "/enterprise"]
DEMO_BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"


class Command(BaseCommand):
    help = "Load the demo workspace: four users, the default pipeline and ~200 realistic leads."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=os.environ.get("DEMO_PASSWORD", "leads-demo-2026"), help="password for the demo users")

    def handle(self, *args, password, **options):
        users = {}
        for email, first, last, role in DEMO_USERS:
            user, _ = user_get_or_create(email=email, first_name=first, last_name=last)
            user.set_password(password)
            user.is_staff = role == Role.SUPER_ADMIN
            user.save(update_fields=["password", "is_staff"])
            users[role if role != Role.SALES_REP else email] = user

        workspace = Workspace.objects.filter(slug=DEMO_SLUG).first()
        if workspace is None:
            workspace = workspace_create(slug=DEMO_SLUG, name="Demo Company", owner=users[Role.SUPER_ADMIN])
        for email, _, _, role in DEMO_USERS:
            membership_set(workspace=workspace, user=users[role if role != Role.SALES_REP else email], role=role)

        site = tracking_site_ensure(workspace=workspace, origins=["http://127.0.0.1:8000", "http://localhost:8000"])
        if Lead.objects.filter(workspace=workspace).exists():
            self.stdout.write("The demo workspace has leads already; users and passwords were refreshed.")
        else:
            self._create_leads(workspace, users)
            self._track_visits(workspace, site)
        self._print_logins(password)

    def _track_visits(self, workspace, site):
        """Website visits for some leads, through the real Track API path (ingest, then processing)."""
        rng = random.Random(7)
        now = timezone.now()
        leads = list(Lead.objects.filter(workspace=workspace).order_by("email")[:DEMO_TRACKED_LEADS])
        for index, lead in enumerate(leads):
            visitor = f"demo-visitor-{index:04d}"
            source = rng.choice(["google", "linkedin", "newsletter"])
            start = now - timedelta(days=rng.uniform(0.5, 6), minutes=rng.randint(0, 600))
            pages = rng.sample(DEMO_PAGES, rng.randint(2, len(DEMO_PAGES)))
            events = [
                {
                    "type": "pageview",
                    "url": f"https://www.example.com{page}" + (f"?utm_source={source}&utm_medium=cpc" if step == 0 else ""),
                    "title": page.strip("/").title() or "Home",
                    "timestamp": (start + timedelta(minutes=2 * step)).isoformat(),
                }
                for step, page in enumerate(pages)
            ]
            events.append(
                {"type": "identify", "traits": {"email": lead.email}, "timestamp": (start + timedelta(minutes=2 * len(pages))).isoformat()}
            )
            batch_ingest(
                workspace=workspace,
                site=site,
                payload={"visitorId": visitor, "events": events, "context": {"js": True}},
                user_agent=DEMO_BROWSER,
            )
            track_events_process(workspace_id=workspace.pk, visitor_keys=[visitor])
        self.stdout.write(f"Tracked website visits for {len(leads)} leads (site {site.name}).")

    @transaction.atomic
    def _create_leads(self, workspace, users):
        rng = random.Random(2026)
        pipeline, _ = pipeline_ensure_default(workspace=workspace)
        stages = list(pipeline.stages.order_by("position"))
        reps = [users["rep1@example.com"], users["rep2@example.com"]]
        marketer = users[Role.MARKETER]
        now = timezone.now()
        for index in range(LEAD_COUNT):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            company, domain, size, industry = rng.choice(COMPANIES)
            source_type, campaign = rng.choice(SOURCES)
            email_local = f"{first}.{last}{index}".lower().replace("ü", "u")
            lead = lead_create(
                workspace=workspace,
                actor=marketer if source_type == "manual" else None,
                data={
                    "name": f"{first} {last}",
                    "email": f"{email_local}@{domain}",
                    "phone": f"+1 415 555 {1000 + index:04d}" if rng.random() < 0.8 else "",
                    "company": {"name": company, "domain": domain, "size": size, "industry": industry, "website": f"https://{domain}"},
                    "title": rng.choice(TITLES),
                    "source_type": source_type,
                    "source_campaign": campaign,
                    "utm_source": rng.choice(["google", "linkedin", "newsletter", ""]),
                    "custom_fields": {
                        "budget_range": rng.choice(["$1k-$10k", "$10k-$50k", "$50k+"]),
                        "timeline": rng.choice(["Q1 2027", "Q2 2027", "This month"]),
                    },
                    "tags": rng.sample(TAGS, rng.randint(0, 3)),
                },
            )
            # Spread creation over the last 60 days so lists and sorting look like real use.
            created = now - timedelta(days=rng.uniform(0, 60))
            Lead.objects.filter(pk=lead.pk).update(
                created_at=created, updated_at=created, last_activity_at=created, score=rng.randint(0, 100)
            )
            LeadActivity.objects.filter(lead=lead).update(created_at=created)
            target = stages[min(int(rng.expovariate(0.6)), len(stages) - 1)]
            if target != stages[0]:
                lead_stage_move(lead=lead, stage=target, actor=rng.choice(reps))
            if rng.random() < 0.7:
                lead_assign(lead=lead, owner=rng.choice(reps), actor=marketer)
            if rng.random() < 0.4:
                lead_note_add(lead=lead, author=rng.choice(reps), text=rng.choice(NOTES))
        self.stdout.write(f"Created {LEAD_COUNT} demo leads with {Note.objects.filter(workspace=workspace).count()} notes.")

    def _print_logins(self, password):
        self.stdout.write(self.style.SUCCESS("\nDemo workspace ready. Sign in at http://127.0.0.1:8000/accounts/login/ as:"))
        for email, _, _, role in DEMO_USERS:
            self.stdout.write(f"  {email:<24} {Role(role).label:<12} password: {password}")
        count = Membership.objects.filter(workspace__slug=DEMO_SLUG).count()
        self.stdout.write(f"({count} members; admin@example.com can also open /admin/.)\n")
