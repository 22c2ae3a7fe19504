"""The signing email: its bodies (rendered once per language and list of demands) and its
links, which are made when the message is sent, never stored.

A signing email carries two capabilities: the link that confirms the signatures and the one
that withdraws them. The outbox keeps the bodies with a marker where each link goes and, in
`OutboxMessage.links`, only the signature ids each link names; the outbox delivery
(`petition.mail`) signs the tokens with the app's secret key as it sends. So the database
holds no working link at any time (a copy of it cannot confirm or withdraw anyone's
signature), and the sign request can write the signature and its message in one statement
before it knows the new signature's id (services.sign).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from flask import render_template
from flask_babel import gettext as _
from flask_babel import ngettext

from petition.links import public_url
from petition.signing import tokens

# Where each link goes in the stored bodies: a private-use character around a name (it can
# be stored by every database, unlike NUL, and is removed from the titles put in the email).
_MARK = "\ue000"
CONFIRM = "confirm"
WITHDRAW = "withdraw"
_ENDPOINTS = {CONFIRM: ("signing.confirm", tokens.CONFIRM),
              WITHDRAW: ("signing.withdraw", tokens.WITHDRAW)}


def hole(name: str) -> str:
    """The marker for one link in a stored body."""
    return f"{_MARK}{name}-url{_MARK}"


class Listed(NamedTuple):
    """A demand as the signing email lists it."""

    title: str
    campaign_title: str


def listed(title: str, campaign_title: str) -> Listed:
    """A listed demand with any link marker character taken out of its titles."""
    return Listed(title.replace(_MARK, ""), campaign_title.replace(_MARK, ""))


class SigningEmail(NamedTuple):
    """The parts of a signing email that are the same for every signer of the same demands."""

    kind: str  # "confirm" or "already-signed"
    subject: str
    text: str
    html: str


def render_signing_email(
    locale: str, max_age_days: int, to_confirm: tuple[Listed, ...], already: tuple[Listed, ...]
) -> SigningEmail:
    """The email's kind, subject, text and HTML with a hole for each link: everything but the
    links is the same for every signer (and no signer's data is in them). The locale is the
    caller's (it is in it); it is an argument so that signing_email() caches by it."""
    context = {
        "to_confirm": to_confirm,
        "already": already,
        "confirm_url": hole(CONFIRM) if to_confirm else None,
        "withdraw_url": hole(WITHDRAW),
        "max_age_days": max_age_days,
    }
    if to_confirm:
        kind = "confirm"
        subject = ngettext(
            "Please confirm your signature", "Please confirm your %(num)d signatures",
            len(to_confirm),
        )
    else:
        kind = "already-signed"
        subject = _("You have already signed")
    return SigningEmail(kind, subject, render_template("mail/signing.txt", **context),
                        render_template("mail/signing.html", **context))



# Made once per language and list of demands.
signing_email = lru_cache(maxsize=256)(render_signing_email)

def links(to_confirm: Sequence[int], all_ids: Sequence[int]) -> dict[str, list[int]]:
    """What OutboxMessage.links keeps: the signature ids each link names."""
    kept = {WITHDRAW: sorted(all_ids)}
    if to_confirm:
        kept[CONFIRM] = sorted(to_confirm)
    return kept


def fill(text: str, html: str, kept: Mapping[str, list[int]], issued_at: datetime) -> tuple[str, str]:
    """The bodies with each hole replaced by its link, the token dated issued_at (when the
    message was queued, so a confirmation link expires counting from the signature)."""
    for name, ids in kept.items():
        endpoint, purpose = _ENDPOINTS[name]
        url = public_url(endpoint, token=tokens.make(purpose, ids, issued_at=issued_at))
        # The URL is made of URL-safe characters: the same escaped for HTML or not.
        text, html = text.replace(hole(name), url), html.replace(hole(name), url)
    return text, html
