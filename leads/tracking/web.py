"""The Tracking settings page: sites, their snippet tag, allowed origins, form tracking and
auto-capture."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from integrations.mapping import MAPPING_TARGETS
from integrations.models import DedupStrategy
from integrations.web import _mapping_from_text
from leads.tracking import services
from leads.tracking.models import TrackingSite
from leads.tracking.snippet import snippet_tag
from workspaces.decorators import workspace_permission_required
from workspaces.permissions import LEADS_MANAGE
from workspaces.scoping import scoped, scoped_get_or_404

LIST_FIELDS = ("allowed_origins", "form_include", "form_exclude", "auto_capture_events")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@workspace_permission_required(LEADS_MANAGE)
def tracking_sites(request):
    error = ""
    if request.method == "POST":
        try:
            site = services.tracking_site_create(
                workspace=request.workspace,
                name=request.POST.get("name", "").strip() or "Website",
                allowed_origins=_lines(request.POST.get("allowed_origins", "")),
            )
        except ValidationError as err:
            error = " ".join(f"{key}: {' '.join(value)}" for key, value in err.message_dict.items())
        else:
            messages.success(request, f"Created {site.name}. Paste its tag into every page of the site.")
            return redirect("tracking-site-edit", site_id=site.pk)
    sites = [(site, snippet_tag(site)) for site in scoped(TrackingSite, request.workspace).order_by("name")]
    return render(request, "leads/tracking_sites.html", {"sites": sites, "error": error}, status=400 if error else 200)


@workspace_permission_required(LEADS_MANAGE)
def tracking_site_edit(request, site_id):
    site = scoped_get_or_404(TrackingSite, request.workspace, pk=site_id)
    error = ""
    if request.method == "POST":
        post = request.POST
        try:
            rate = int(post.get("rate_limit_per_minute", "") or 0)
            if rate < 1:
                raise ValidationError({"rate_limit_per_minute": "At least 1 request a minute."})
            services.tracking_site_update(
                site=site,
                name=post.get("name", "").strip() or site.name,
                allowed_origins=_lines(post.get("allowed_origins", "")),
                form_include=_lines(post.get("form_include", "")),
                form_exclude=_lines(post.get("form_exclude", "")),
                field_mapping=_mapping_from_text(post.get("field_mapping", "")),
                form_events={key: f"event_{key}" in post for key in site.form_events},
                auto_capture_events=_lines(post.get("auto_capture_events", "")),
                auto_capture_required_fields=[name.strip() for name in post.get("required_fields", "").split(",") if name.strip()],
                dedup_strategy=post.get("dedup_strategy", ""),
                rate_limit_per_minute=rate,
                is_active=post.get("is_active") == "on",
            )
        except ValueError:
            error = "rate_limit_per_minute: A whole number."
        except ValidationError as err:
            error = " ".join(f"{key}: {' '.join(value)}" for key, value in err.message_dict.items())
        else:
            messages.success(request, f"Saved {site.name}.")
            return redirect("tracking-sites")
    return render(
        request,
        "leads/tracking_site_edit.html",
        {
            "site": site,
            "snippet": snippet_tag(site),
            "texts": {key: "\n".join(getattr(site, key)) for key in LIST_FIELDS},
            "strategies": DedupStrategy.choices,
            "targets": [target for target in MAPPING_TARGETS if target != "ignore"],
            "mapping_text": "\n".join(f"{incoming} = {target}" for incoming, target in site.field_mapping.items()),
            "error": error,
            "posted": request.POST if error else None,
        },
        status=400 if error else 200,
    )


@require_POST
@workspace_permission_required(LEADS_MANAGE)
def tracking_site_delete(request, site_id):
    site = scoped_get_or_404(TrackingSite, request.workspace, pk=site_id)
    services.tracking_site_delete(site=site)
    messages.success(request, f"Deleted {site.name}. Its events and visitors are kept.")
    return redirect("tracking-sites")
