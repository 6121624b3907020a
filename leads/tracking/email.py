"""Open pixel and click tracking for emails we send (sequences use these): each link and pixel
carries a signed token naming the workspace, the lead, the campaign and the message."""

from urllib.parse import urlparse

from django.conf import settings
from django.core import signing
from django.urls import reverse

EMAIL_TOKEN_SALT = "leadsmgr.tracking.email"


def _token(*, lead, campaign: str, message: str, url: str = "") -> str:
    data = {"w": str(lead.workspace_id), "l": str(lead.pk), "c": campaign[:200], "m": message[:64]}
    if url:
        data["u"] = url
    return signing.dumps(data, salt=EMAIL_TOKEN_SALT, compress=True)


def email_open_pixel_url(*, lead, campaign: str = "", message: str = "") -> str:
    """The absolute URL of the 1x1 image to put at the end of the email."""
    token = _token(lead=lead, campaign=campaign, message=message)
    return settings.PUBLIC_BASE_URL + reverse("email-open", args=[token])


def email_click_url(*, lead, url: str, campaign: str = "", message: str = "") -> str:
    """The tracked version of a link in the email. Only http(s) links can be wrapped."""
    if urlparse(url).scheme not in ("http", "https"):
        raise ValueError("Only http and https links can be tracked.")
    token = _token(lead=lead, campaign=campaign, message=message, url=url)
    return settings.PUBLIC_BASE_URL + reverse("email-click", args=[token])
