"""Signed, unguessable tokens for confirmation and withdrawal links (itsdangerous)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from petition.config import signing_keys

CONFIRM = "signature-confirm-v1"
WITHDRAW = "signature-withdraw-v1"


class TokenInvalid(Exception):
    """The token was tampered with, truncated or made for another purpose."""


class TokenExpired(Exception):
    """The token is genuine but too old; carries the signature ids it named."""

    def __init__(self, signature_ids: list[int]) -> None:
        super().__init__("token expired")
        self.signature_ids = signature_ids


class _IssuedAtSigner(TimestampSigner):
    """A TimestampSigner that dates its signatures at a given time, not now."""

    def __init__(self, *args: Any, issued_at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued_at = issued_at

    def get_timestamp(self) -> int:
        return self.issued_at


def _serializer(purpose: str, issued_at: datetime | None = None) -> URLSafeTimedSerializer:
    """The purpose's serializer; with issued_at, one that dates its tokens then."""
    if issued_at is None:
        return URLSafeTimedSerializer(signing_keys(current_app.config), salt=purpose)
    return URLSafeTimedSerializer(
        signing_keys(current_app.config), salt=purpose, signer=_IssuedAtSigner,
        signer_kwargs={"issued_at": int(issued_at.timestamp())},
    )


def make(purpose: str, signature_ids: list[int], issued_at: datetime | None = None) -> str:
    """A token naming the given signatures, for the given purpose, dated issued_at (default
    now): its age, checked by load(), counts from then."""
    return _serializer(purpose, issued_at).dumps(sorted(signature_ids))


def load(purpose: str, token: str, max_age_seconds: int | None = None) -> list[int]:
    """The signature ids in a token; raises TokenInvalid or TokenExpired."""
    serializer = _serializer(purpose)
    try:
        payload = serializer.loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        try:
            ids = _ids(serializer.load_payload(exc.payload)) if exc.payload else None
        except BadSignature:
            ids = None
        if ids is None:
            raise TokenInvalid from exc
        raise TokenExpired(ids) from exc
    except (BadSignature, ValueError, UnicodeError) as exc:
        raise TokenInvalid from exc
    ids = _ids(payload)
    if ids is None:
        raise TokenInvalid
    return ids


def _ids(payload: object) -> list[int] | None:
    if (
        isinstance(payload, list)
        and 0 < len(payload) <= 100
        and all(isinstance(i, int) and not isinstance(i, bool) for i in payload)
    ):
        return payload
    return None
