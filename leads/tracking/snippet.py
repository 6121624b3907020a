"""The one tag a site installs."""

from django.conf import settings
from django.utils.html import format_html


def snippet_tag(site) -> str:
    base = settings.PUBLIC_BASE_URL
    return str(
        format_html(
            '<script async src="{}/t.js" data-site-key="{}"></script>\n'
            '<noscript><img src="{}/t.gif?k={}" alt="" width="1" height="1" style="display:none"></noscript>',
            base,
            site.site_key,
            base,
            site.site_key,
        )
    )
