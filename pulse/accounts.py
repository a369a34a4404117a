"""People who sign in and systems that call the API: argon2 passwords, API keys stored as hashes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from tortoise.transactions import in_transaction

from pulse import audit, db
from pulse.errors import BadRequest, Conflict
from pulse.i18n import N_, N_plural
from pulse.models import ApiKey, Team, User, UserTeam
from pulse.settings import LOCALES

ROLES = ("admin", "hr", "manager", "analyst")
SCOPES = (
    "touchpoints:write",
    "analytics:read",
    "responses:read",
    "cases:read",
    "cases:write",
    "employees:write",
    "engagement:read",
    "privacy:read",
    "privacy:write",
)
MIN_PASSWORD_LENGTH = 12
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")

_hasher = PasswordHasher()
# argon2 takes a good fraction of a second of CPU per password (it releases the GIL): on the event loop, a few
# sign-ins would stall every other request and the worker loops. A small pool keeps them beside the loop, and
# bounds how many cores a flood of sign-ins can take; the rest wait their turn.
_PASSWORD_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def new_password_hash(password: str) -> str:
    """`hash_password` in the password threads, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_PASSWORD_THREADS, hash_password, password)


async def password_matches(stored_hash: str, password: str) -> bool:
    """`verify_password` in the password threads, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_PASSWORD_THREADS, verify_password, stored_hash, password)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(
            N_plural(
                "The password must be at least %(num)s character long.",
                "The password must be at least %(num)s characters long.",
            ),
            num=MIN_PASSWORD_LENGTH,
        )


async def create_user(
    email: str,
    password: str,
    role: str,
    *,
    display_name: str = "",
    locale: str = "en",
    teams: list[str] | None = None,
    actor: str | None = None,
    source: str = "",
) -> User:
    """Create a user; a manager is scoped to the teams given by slug. With an `actor`, the audit log says who."""
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise BadRequest(N_("%(email)s is not an e-mail address."), email=repr(email))
    if role not in ROLES:
        raise BadRequest(
            N_("The role must be one of %(roles)s, not %(role)s."), roles=", ".join(ROLES), role=repr(role)
        )
    if locale not in LOCALES:
        raise BadRequest(
            N_("The locale must be one of %(locales)s, not %(locale)s."),
            locales=", ".join(LOCALES),
            locale=repr(locale),
        )
    check_password_rules(password)
    if await User.exists(email=email):
        raise Conflict(N_("A user with the e-mail %(email)s already exists."), email=email)
    found = await Team.filter(slug__in=teams or []).all()
    missing = sorted(set(teams or []) - {t.slug for t in found})
    if missing:
        raise BadRequest(N_("No team with the slug %(slugs)s."), slugs=", ".join(missing))
    password_hash = await new_password_hash(password)  # before the transaction: it takes a while
    async with in_transaction():
        user = await User.create(
            email=email, password_hash=password_hash, role=role, display_name=display_name, locale=locale
        )
        for team in found:
            await UserTeam.create(user=user, team=team)
        if actor is not None:
            details = {"role": role, "teams": sorted(t.slug for t in found)}
            await audit.record("user.created", actor=actor, target=f"user {email}", source=source, details=details)
    return user


def _key_hash(secret: str) -> str:
    # API keys carry 256 bits of randomness, so a fast hash is enough (a password hash would cost ms per call)
    return hashlib.sha256(secret.encode()).hexdigest()


def key_target(key: ApiKey) -> str:
    """How the audit log names a key: its prefix and name, never its secret."""
    return f"api key {key.prefix} ({key.name})"


async def create_api_key(
    name: str, scopes: list[str], *, actor: str | None = None, source: str = ""
) -> tuple[ApiKey, str]:
    """Create a key; the plain key is returned once and never stored. With an `actor`, the audit log says who."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise BadRequest(
            N_("Unknown scope %(unknown)s; the scopes are %(scopes)s."),
            unknown=", ".join(unknown),
            scopes=", ".join(SCOPES),
        )
    if not scopes:
        raise BadRequest(N_("Give the key at least one scope."))
    if not name.strip():
        raise BadRequest(N_("Give the key a name that says who uses it."))
    prefix = secrets.token_hex(4)
    secret = f"pulse_{prefix}_{secrets.token_urlsafe(32)}"
    async with in_transaction():
        key = await ApiKey.create(
            name=name.strip(), prefix=prefix, key_hash=_key_hash(secret), scopes=sorted(set(scopes))
        )
        if actor is not None:
            details = {"scopes": key.scopes}
            await audit.record("apikey.created", actor=actor, target=key_target(key), source=source, details=details)
    return key, secret


async def find_api_key(secret: str) -> ApiKey | None:
    """The live key a presented secret belongs to, or None."""
    parts = secret.split("_")
    if len(parts) < 3 or parts[0] != "pulse":
        return None
    key = await ApiKey.get_or_none(prefix=parts[1], revoked_at=None, using_db=db.reader())
    if key is None or not hmac.compare_digest(key.key_hash, _key_hash(secret)):
        return None
    return key


async def revoke_api_key(prefix: str, *, actor: str | None = None, source: str = "") -> bool:
    """Revoke the live key with this prefix; False when there is none. With an `actor`, the audit log says who."""
    async with in_transaction():
        key = await ApiKey.get_or_none(prefix=prefix, revoked_at=None)
        if key is None or not await ApiKey.filter(id=key.id, revoked_at=None).update(revoked_at=datetime.now(UTC)):
            return False
        if actor is not None:
            await audit.record("apikey.revoked", actor=actor, target=key_target(key), source=source)
    return True
