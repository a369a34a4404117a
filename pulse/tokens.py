"""Signed, expiring tokens for links in e-mails: bound to one invitation and one purpose, nothing guessable."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeTimedSerializer

__all__ = ["TokenExpired", "TokenInvalid", "URLSafeTimedSerializer", "make_token", "read_token"]

PURPOSES = ("survey", "unsubscribe")


class TokenInvalid(Exception):
    """Tampered, truncated, made with another key or for another purpose."""


class TokenExpired(Exception):
    """Genuine but older than its lifetime; `invitation_id` says which invitation it was for."""

    def __init__(self, invitation_id: int | None) -> None:
        super().__init__("token expired")
        self.invitation_id = invitation_id


@functools.lru_cache(maxsize=16)  # built once: every answer reads a token and a nonce and makes a nonce
def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret_key, salt=f"pulse.{purpose}")


def make_token(secret_key: str, purpose: str, invitation_id: int) -> str:
    return _serializer(secret_key, purpose).dumps(invitation_id)


def read_token(secret_key: str, purpose: str, token: str, max_age_seconds: int) -> int:
    """The invitation id a token was made for; raise TokenInvalid or TokenExpired."""
    serializer = _serializer(secret_key, purpose)
    try:
        value = serializer.loads(token, max_age=max_age_seconds)
    except SignatureExpired as expired:
        payload = expired.payload
        try:
            invitation_id = serializer.load_payload(payload) if payload is not None else None
        except BadSignature:
            invitation_id = None
        raise TokenExpired(invitation_id if isinstance(invitation_id, int) else None) from None
    except BadSignature:
        raise TokenInvalid() from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenInvalid()
    return value


def pulse_token(secret_key: str, invitation_id: int) -> str:
    """An employee's pulse link: opaque (an HMAC of the invitation, so it names nothing), the same in the
    invitation and the reminder, and looked up through its hash (`token_hash`), never decoded."""
    digest = hmac.new(secret_key.encode(), f"pulse-link\x1f{invitation_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")


def token_hash(token: str) -> str:
    """What the database keeps of a link token: its SHA-256, so a database copy opens no link."""
    return hashlib.sha256(token.encode()).hexdigest()


def make_nonce(secret_key: str, subject: str, now: float) -> str:
    """A per-render nonce for an answer page: which page (`subject`), when it was rendered, signed."""
    payload = f"{subject}|{int(now * 1000)}|{secrets.token_hex(8)}"
    return _nonce_signer(secret_key).sign(payload).decode("ascii")


@functools.lru_cache(maxsize=16)
def _nonce_signer(secret_key: str) -> Signer:
    return Signer(secret_key, salt="pulse.nonce")


def read_nonce(secret_key: str, subject: str, nonce: str) -> float:
    """When the page with this nonce was rendered (seconds since the epoch); TokenInvalid otherwise."""
    try:
        payload = _nonce_signer(secret_key).unsign(nonce).decode("ascii")
        found, rendered_ms, _ = payload.split("|")
        if found != subject:
            raise ValueError(subject)
        return int(rendered_ms) / 1000
    except (BadSignature, ValueError, UnicodeDecodeError):
        raise TokenInvalid() from None
