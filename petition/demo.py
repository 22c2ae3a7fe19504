"""Demo data: a fictional campaign written for this project, with generated signatures."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from datetime import timedelta

from flask import current_app
from sqlalchemy import insert
from sqlalchemy.orm import Session

from petition.models import (
    Campaign,
    CampaignStatus,
    DemandStatus,
    Role,
    Signature,
    SignatureStatus,
    utcnow,
)
from petition.organiser.accounts import create_organiser, set_role
from petition.organiser.services import add_demand, create_campaign
from petition.signing import counts

CAMPAIGN_BODY = """\
Families in our diaspora have not heard from their relatives for years. People are held
without charge, and those of us who speak out abroad are followed, threatened and pressured
through the relatives we left behind.

This is a **demo campaign** written for this software. Each of the demands below is a
petition of its own: sign the ones you support, one at a time or several at once.
"""

DEMANDS: list[dict[str, object]] = [
    {
        "title": "Open an independent international investigation",
        "target": "The UN Human Rights Council",
        "goal": 5000,
        "body": "Mandate an independent investigation, with access to the region, into "
        "arbitrary detention and enforced disappearance, and publish its findings.",
    },
    {
        "title": "Release everyone held without charge",
        "target": "The national government",
        "goal": 3000,
        "body": "Release every person detained without charge or fair trial, and tell "
        "families where their relatives are held.",
    },
    {
        "title": "Sanction the officials responsible",
        "target": "Our foreign ministry",
        "goal": 2000,
        "body": "Impose targeted sanctions (asset freezes and travel bans) on the officials "
        "who run the detention system.",
    },
    {
        "title": "Protect diaspora communities from intimidation",
        "target": "Our interior ministry and police",
        "goal": 1500,
        "body": "Treat threats against diaspora members and their families as crimes, give "
        "people a safe way to report them, and publish what is done.",
    },
    {
        "title": "Keep goods made with forced labour off our shelves",
        "target": "Parliament",
        "goal": 2500,
        "body": "Pass a law that stops the import of goods made with forced labour and "
        "makes companies trace their supply chains.",
    },
    {
        "title": "Stop deportations to the region",
        "target": "The immigration authority",
        "goal": 1000,
        "body": "Halt deportations of people from the region while the investigation runs. "
        "This demand was met in part and is now closed.",
        "status": DemandStatus.CLOSED,
    },
]

FIRST = ["Amina", "Yusuf", "Leila", "Omar", "Sara", "Tom", "Marie", "Jonas", "Aigerim", "Dilnoza",
         "Kemal", "Elif", "Ahmet", "Zeynep", "Mehmet", "Anna", "Lucas", "Sofia", "Noah", "Emma",
         "Arslan", "Gulnar", "Nurlan", "Mei", "Hiro", "Priya", "Ravi", "Fatima", "Ali", "Hana"]
LAST = ["Yilmaz", "Kaya", "Demir", "Smith", "Jones", "Müller", "Schmidt", "Dubois", "Martin",
        "Rossi", "Tursun", "Abdulla", "Karimova", "Haddad", "Nguyen", "Sato", "Khan", "Ahmed",
        "Novak", "Jansen", "de Vries", "Andersson", "Nilsen", "García", "López", "Kowalski"]
COUNTRIES = ["GB"] * 8 + ["DE"] * 6 + ["TR"] * 6 + ["US"] * 5 + ["NL"] * 3 + ["FR"] * 3 + \
    ["KZ"] * 2 + ["SE", "NO", "CA", "AU", "JP", "BE", "IT", "ES", "PL"]
SOURCES = [None] * 6 + ["newsletter", "stall-2026-10-17", "qr-poster"]


DEMO_ORGANISER = "organiser@example.org"


def create_demo_organiser(session: Session, campaign: Campaign) -> str:
    """Create the demo organiser (owner of the campaign); returns its random password."""
    password = secrets.token_urlsafe(12)
    organiser = create_organiser(session, DEMO_ORGANISER, password)
    set_role(session, campaign, organiser, Role.OWNER)
    return password


def create_demo(session: Session, *, signatures: int = 400, seed: int = 2026) -> Campaign:
    """Create the demo campaign, its demands and confirmed signatures over recent weeks."""
    rng = random.Random(seed)
    cipher = current_app.extensions["petition.cipher"]
    campaign = create_campaign(
        session,
        title="Truth and freedom for the detained",
        summary="Six demands for the families of people detained without charge.",
        body=CAMPAIGN_BODY,
        organisation="Demo Human Rights Network",
        status=CampaignStatus.OPEN,
    )
    demands = [
        add_demand(
            session,
            campaign,
            title=str(d["title"]),
            body=str(d["body"]),
            target=str(d["target"]),
            goal=int(d["goal"]),  # type: ignore[call-overload]
            status=d.get("status", DemandStatus.OPEN),  # type: ignore[arg-type]
        )
        for d in DEMANDS
    ]
    now = utcnow()
    rows = []
    per_demand: Counter[int] = Counter()
    for i in range(signatures):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"demo.{i}@example.org"
        demand = rng.choices(demands, weights=[30, 25, 18, 12, 10, 5])[0]
        created = now - timedelta(days=rng.triangular(0, 42, 3), minutes=rng.randrange(1440))
        rows.append({
            "demand_id": demand.id,
            "email_key": cipher.email_key(email),
            "email_domain_key": cipher.domain_key(email),
            "name_enc": cipher.encrypt(f"{first} {last}", "signature.name"),
            "email_enc": cipher.encrypt(email, "signature.email"),
            "postcode_enc": None,
            "country": rng.choice(COUNTRIES),
            "contact_consent": rng.random() < 0.4,
            "public_consent": rng.random() < 0.5,
            "source": rng.choice(SOURCES),
            "ip_hash": None,
            "status": SignatureStatus.CONFIRMED,
            "emails_sent": 1,
            "created_at": created,
            "confirmed_at": min(now, created + timedelta(minutes=rng.randrange(1, 120))),
        })
        per_demand[demand.id] += 1
    if rows:
        session.execute(insert(Signature), rows)
    for demand_id, n in per_demand.items():
        counts.add(session, demand_id, n)
    session.commit()
    return campaign
