"""The recipient's HTML: a handful of small string templates, every value escaped with
``html.escape``. No script, no external resource: the pages' CSP allows none."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote

from pacsguard.archives import CatalogueEntry

__all__ = ["code_page", "list_page", "mask_email", "passcode_page", "refusal_page"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "li{margin:1rem 0;list-style:none}img{display:block;max-width:256px;background:#000}"
    ".note{color:#a40}button,input{font-size:1rem;padding:.3rem .6rem}"
)

REFUSAL = (
    "This link cannot be opened. It may have expired, been used up or withdrawn, or it was "
    "copied incompletely. Ask the person who shared it for a new link."
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def refusal_page() -> str:
    """The one page every refused link gets, whatever the reason."""
    return _page("Link not available", f"<p>{escape(REFUSAL)}</p>")


def _note(message: str | None) -> str:
    return f'<p class="note" role="alert">{escape(message)}</p>' if message else ""


def _form(token: str, form_token: str, action: str, inner: str) -> str:
    return (
        f'<form method="post" action="/share/{quote(token)}">'
        f'<input type="hidden" name="form" value="{escape(form_token)}">'
        f'<input type="hidden" name="action" value="{escape(action)}">{inner}</form>'
    )


def passcode_page(token: str, form_token: str, message: str | None = None) -> str:
    """Ask for the link's passcode."""
    field = (
        '<label>Passcode <input type="password" name="passcode" autocomplete="off" required autofocus></label> '
        "<button>Open</button>"
    )
    body = "<p>The sender protected these images with a passcode.</p>" + _note(message)
    return _page("Shared images", body + _form(token, form_token, "passcode", field))


def code_page(token: str, form_token: str, recipient: str, message: str | None = None) -> str:
    """Offer to e-mail a one-time code to the link's recipient, and take the code."""
    send = _form(token, form_token, "send", "<button>Send me a code</button>")
    enter = _form(
        token,
        form_token,
        "code",
        '<label>Code <input name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" '
        'autocomplete="one-time-code" required></label> <button>Open</button>',
    )
    body = (
        f"<p>These images were shared with {escape(mask_email(recipient))}. "
        "We will e-mail a one-time code to that address.</p>" + _note(message) + send + enter
    )
    return _page("Shared images", body)


def list_page(token: str, entries: Sequence[CatalogueEntry], expires: str, site_name: str) -> str:
    """The studies of the link, each with its preview, and the download."""
    items = []
    base = f"/share/{quote(token)}"
    for e in entries:
        label = " · ".join(
            x for x in (e.study_date.isoformat() if e.study_date else "", e.modality, e.description) if x
        )
        uid = quote(e.study_uid)
        items.append(
            f"<li><strong>{escape(label or 'Study')}</strong><br><small>{escape(e.study_uid)}</small>"
            f'<img src="{base}/preview/{uid}.png" alt="preview of the study" width="256">'
            f'<a href="{base}/download?study={uid}">Download this study (ZIP)</a></li>'
        )
    body = (
        f"<p>Shared by {escape(site_name)}. This link works until {escape(expires)} (UTC).</p>"
        f'<ul>{"".join(items)}</ul><p><a href="{base}/download">Download all (ZIP)</a></p>'
    )
    return _page("Shared images", body)


def mask_email(address: str) -> str:
    """``j***@example.org``: enough for the owner to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
