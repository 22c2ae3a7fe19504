"""Encryption of signer PII at rest (AES-GCM) and keyed hashes for dedup and IP addresses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from collections.abc import Iterable
from typing import NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


class DataCipher:
    """Encrypts and decrypts PII fields and computes keyed hashes from one master key."""

    def __init__(self, master_key: str | bytes, dotless_domains: list[str] | None = None) -> None:
        raw = _decode_key(master_key)
        self._aead = AESGCM(_derive(raw, b"petition pii aes-gcm v1"))
        self._email_key = _derive(raw, b"petition email dedup hmac v1")
        self._ip_key = _derive(raw, b"petition ip hmac v1")
        self._domain_key = _derive(raw, b"petition email domain hmac v1")
        self._limit_key = _derive(raw, b"petition rate limit hmac v1")
        self._fingerprint = _derive(raw, b"petition data key fingerprint v1").hex()
        self._dotless = {d.lower() for d in (dotless_domains or ["gmail.com", "googlemail.com"])}

    @property
    def fingerprint(self) -> str:
        """A value derived from the key that tells keys apart without revealing them (hex);
        the database keeps it to refuse a process started with another key (petition.keys)."""
        return self._fingerprint

    def encrypt(self, value: str | None, field: str) -> bytes | None:
        """Encrypt a text value; the field name is bound as associated data."""
        if value is None:
            return None
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, value.encode(), field.encode())

    def decrypt(self, blob: bytes | None, field: str) -> str | None:
        """Decrypt a value made by encrypt() for the same field."""
        if blob is None:
            return None
        blob = bytes(blob)
        if blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(blob[1:13], blob[13:], field.encode()).decode()

    def decrypt_many(self, blobs: Iterable[bytes | None], field: str) -> list[str | None]:
        """decrypt() of many values of one field, in order (for exports: no per-value call).

        The same checks as decrypt(): None stays None, an unknown version raises ValueError,
        a wrong key, field or tampered value raises InvalidTag.
        """
        aad = field.encode()
        decrypt = self._aead.decrypt
        # One list comprehension: the per-value cost is the AES-GCM call itself (bytes and
        # memoryview both slice and compare as decrypt() expects).
        return [
            None if blob is None
            else decrypt(blob[1:13], blob[13:], aad).decode() if blob[:1] == _VERSION
            else _unknown_version()
            for blob in blobs
        ]

    def normalise_email(self, email: str) -> str:
        """Normalise an address for dedup: trim, NFC, lower-case, provider-specific aliases."""
        email = unicodedata.normalize("NFC", email.strip()).lower()
        local, sep, domain = email.rpartition("@")
        if not sep:
            return email
        if domain == "googlemail.com" and "gmail.com" in self._dotless:
            domain = "gmail.com"
        if domain in self._dotless:
            local = local.split("+", 1)[0].replace(".", "")
        return f"{local}@{domain}"

    def email_key(self, email: str) -> str:
        """Keyed HMAC (hex) of the normalised email: the dedup key stored in the database."""
        normalised = self.normalise_email(email).encode()
        return hmac.new(self._email_key, normalised, hashlib.sha256).hexdigest()

    def domain_key(self, email_or_domain: str) -> str:
        """Keyed HMAC (hex) of an address's domain (or of a bare domain), for moderation."""
        domain = self.normalise_email(email_or_domain).rpartition("@")[2]
        if domain == "googlemail.com":
            domain = "gmail.com"
        return hmac.new(self._domain_key, domain.encode(), hashlib.sha256).hexdigest()

    def ip_hash(self, ip: str | None) -> str | None:
        """Keyed HMAC (hex) of an IP address; the raw address is never stored."""
        if not ip:
            return None
        return hmac.new(self._ip_key, ip.encode(), hashlib.sha256).hexdigest()

    def limit_key(self, network: str) -> str:
        """Keyed HMAC (hex, 128 bits) of a client's network, the key rate limits count under:
        a key of its own, so a rate-limit key cannot be matched with a stored IP hash."""
        return hmac.new(self._limit_key, network.encode(), hashlib.sha256).hexdigest()[:32]


def _unknown_version() -> NoReturn:
    raise ValueError("unknown ciphertext version")


def _decode_key(key: str | bytes) -> bytes:
    if isinstance(key, str):
        key = key.encode()
    key = key.strip()
    try:
        raw = base64.urlsafe_b64decode(key + b"=" * (-len(key) % 4))
    except ValueError as exc:
        raise ValueError("DATA_KEY must be 32 bytes, URL-safe base64 encoded") from exc
    if len(raw) != 32:
        raise ValueError("DATA_KEY must be 32 bytes, URL-safe base64 encoded")
    return raw


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)
