"""Notification settings checked and rendered (pure): webhook URLs, the dashboard link.

Webhook URLs are credentials (a Slack incoming-webhook URL carries its token in the path):
errors and logs name a URL by its position and host only, see :func:`describe_endpoint`.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

__all__ = [
    "DASHBOARD_FIELDS",
    "check_dashboard_template",
    "describe_endpoint",
    "parse_webhook_urls",
    "render_dashboard_url",
]

#: The placeholders NOTIFY_DASHBOARD_URL may use.
DASHBOARD_FIELDS = frozenset({"prompt", "version", "namespace", "phase"})


def describe_endpoint(url: str) -> str:
    """`url` without path, query or credentials (``https://hooks.slack.com``): safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def parse_webhook_urls(value: str) -> tuple[str, ...]:
    """The comma-separated NOTIFY_WEBHOOK_URLS; ValueError naming the bad entry by position."""
    urls: list[str] = []
    for position, raw in enumerate(value.split(","), start=1):
        url = raw.strip()
        if not url:
            continue
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = None, False
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"NOTIFY_WEBHOOK_URLS entry {position} is not an http(s) URL")
        if not port_ok:
            raise ValueError(f"NOTIFY_WEBHOOK_URLS entry {position} has an invalid port")
        if parts.username or parts.password:
            raise ValueError(
                f"NOTIFY_WEBHOOK_URLS entry {position} carries credentials in the URL; "
                "receivers authenticate events by their signature"
            )
        if url in urls:
            raise ValueError(f"NOTIFY_WEBHOOK_URLS entry {position} repeats an earlier URL")
        urls.append(url)
    return tuple(urls)


def check_dashboard_template(template: str) -> None:
    """ValueError when NOTIFY_DASHBOARD_URL uses an unknown placeholder or bad braces."""
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as error:
        raise ValueError(f"NOTIFY_DASHBOARD_URL: {error}") from None
    unknown = sorted({f for f in fields if f not in DASHBOARD_FIELDS})
    if unknown:
        allowed = ", ".join(f"{{{f}}}" for f in sorted(DASHBOARD_FIELDS))
        raise ValueError(
            f"NOTIFY_DASHBOARD_URL uses unknown placeholder(s) {', '.join(unknown)}; "
            f"allowed: {allowed}"
        )
    if template and urlsplit(template).scheme not in ("http", "https"):
        raise ValueError("NOTIFY_DASHBOARD_URL is not an http(s) URL")


def render_dashboard_url(template: str, values: Mapping[str, str | None]) -> str | None:
    """The dashboard link with `values` URL-encoded into it; None when no template is set."""
    if not template:
        return None
    safe = {k: quote(values.get(k) or "", safe="") for k in DASHBOARD_FIELDS}
    return template.format_map(safe)
