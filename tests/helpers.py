"""Factories and small helpers for tests (keyword-only arguments)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from petition.models import Campaign, CampaignStatus, Demand, DemandStatus
from petition.organiser.services import add_demand, create_campaign


def make_campaign(
    session: Session,
    *,
    title: str = "Test campaign",
    demands: int = 3,
    status: CampaignStatus = CampaignStatus.OPEN,
    demand_status: DemandStatus = DemandStatus.OPEN,
    goal: int = 100,
) -> Campaign:
    """A campaign with numbered open demands, committed."""
    campaign = create_campaign(session, title=title, status=status, summary="Summary",
                               body="Some **bold** text", organisation="Test Org")
    for i in range(1, demands + 1):
        add_demand(session, campaign, title=f"Demand number {i}", target="Someone",
                   goal=goal, status=demand_status, body=f"Body of demand {i}")
    session.commit()
    return campaign


def csrf_token(client: FlaskClient, path: str) -> str:
    """Load a page and return the CSRF token of its form."""
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.text) or \
        re.search(r'type="hidden" name="csrf_token" value="([^"]+)"', response.text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def signer(**overrides: Any) -> dict[str, Any]:
    """Valid sign-form fields, with overrides."""
    data: dict[str, Any] = {
        "name": "Ayşe Yılmaz",
        "email": "ayse@example.org",
        "country": "DE",
        "postcode": "10115",
        "public_consent": "y",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def sign_petition(client: FlaskClient, demand: Demand, **fields: Any):  # noqa: ANN201
    """Submit the petition sign form like a browser (page first, for the token)."""
    token = csrf_token(client, f"/petitions/{demand.slug}")
    return client.post(f"/petitions/{demand.slug}/sign", data={"csrf_token": token, **signer(**fields)})


def sign_campaign(client: FlaskClient, campaign: Campaign, demand_ids: list[int], **fields: Any):  # noqa: ANN201
    """Submit the campaign multi-sign form."""
    token = csrf_token(client, f"/campaigns/{campaign.slug}")
    data = {"csrf_token": token, "demands": [str(i) for i in demand_ids], **signer(**fields)}
    return client.post(f"/campaigns/{campaign.slug}/sign", data=data)


def make_organiser(
    session: Session,
    *,
    email: str = "org@example.org",
    password: str = "correct horse battery",
    campaign: Campaign | None = None,
    role: str = "owner",
):  # noqa: ANN201
    """An organiser account, optionally a member of campaign with role; committed."""
    from petition.models import Role
    from petition.organiser.accounts import create_organiser, set_role

    organiser = create_organiser(session, email, password)
    if campaign is not None:
        set_role(session, campaign, organiser, Role(role))
    session.commit()
    return organiser


def login(client: FlaskClient, email: str = "org@example.org",
          password: str = "correct horse battery") -> None:
    """Log the client in as an organiser (asserts success)."""
    token = csrf_token(client, "/organiser/login")
    response = client.post("/organiser/login", data={"csrf_token": token, "email": email,
                                                     "password": password})
    assert response.status_code == 303, response.text


def soft_open_files(pid: int | str) -> int:
    """The soft limit of open files of a running process (/proc/<pid>/limits)."""
    line = next(x for x in (Path("/proc") / str(pid) / "limits").read_text().splitlines()
                if x.startswith("Max open files"))
    return int(line.split()[3])
