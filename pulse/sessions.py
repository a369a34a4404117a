"""Sign-in: server-side sessions (revocable, rotated at login), throttled password checks, reset links."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from pulse import throttle
from pulse.accounts import check_password_rules, hash_password, new_password_hash, password_matches
from pulse.errors import BadRequest
from pulse.i18n import N_
from pulse.models import Session, User

RESET_MAX_AGE = timedelta(hours=1)
# verifying against a real hash even for unknown e-mails keeps the timing of both answers alike
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def authenticate(email: str, password: str, client: str, secret: str) -> User | None:
    """The active user with this e-mail and password, or None; every attempt is throttled (pulse/throttle.py,
    its subjects keyed with `secret`) and waits its turn before the password is checked."""
    admission = await throttle.admit(email, client, secret)
    await admission.wait()
    user = await User.get_or_none(email=email.strip().lower(), is_active=True)
    valid = await password_matches(user.password_hash if user else _DUMMY_HASH, password)
    await throttle.settle(admission, succeeded=user is not None and valid)
    return user if user is not None and valid else None


async def start(user: User, hours: int, client: str = "", user_agent: str = "") -> str:
    """A new session for a user who just proved who they are; returns the cookie value (shown once)."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await Session.create(
        token_hash=_digest(token),
        user=user,
        last_seen_at=now,
        expires_at=now + timedelta(hours=hours),
        client=client[:64],
        user_agent=user_agent[:255],
    )
    await User.filter(id=user.id).update(last_login_at=now)
    return token


async def resume(token: str | None, hours: int) -> User | None:
    """The user of a live session; the session's idle expiry slides forward (at most once a minute)."""
    if not token or len(token) > 100:
        return None
    session = await Session.get_or_none(token_hash=_digest(token)).select_related("user")
    now = datetime.now(UTC)
    if session is None or session.expires_at <= now or not session.user.is_active:
        if session is not None:
            await session.delete()
        return None
    if now - session.last_seen_at > timedelta(minutes=1):
        await Session.filter(id=session.id).update(last_seen_at=now, expires_at=now + timedelta(hours=hours))
    return session.user


async def end(token: str | None) -> None:
    if token:
        await Session.filter(token_hash=_digest(token)).delete()


async def end_all(user: User) -> int:
    """Sign the user out on every device."""
    return await Session.filter(user_id=user.id).delete()


def _reset_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="pulse.password-reset")


def reset_token(secret_key: str, user: User) -> str:
    """A reset link token bound to the current password: using it (or any change) makes it worthless."""
    fingerprint = hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]
    return _reset_serializer(secret_key).dumps([user.id, fingerprint])


async def reset_user(secret_key: str, token: str) -> User:
    try:
        user_id, fingerprint = _reset_serializer(secret_key).loads(token, max_age=int(RESET_MAX_AGE.total_seconds()))
    except SignatureExpired:
        raise BadRequest(N_("This reset link has expired. Ask for a new one.")) from None
    except (BadSignature, ValueError, TypeError):
        raise BadRequest(N_("This reset link is not valid. Ask for a new one.")) from None
    user = await User.get_or_none(id=user_id, is_active=True)
    expected = hashlib.sha256(user.password_hash.encode()).hexdigest()[:16] if user else ""
    if user is None or not hmac.compare_digest(expected, str(fingerprint)):
        raise BadRequest(N_("This reset link was already used. Ask for a new one."))
    return user


async def set_password(user: User, password: str) -> None:
    """Change the password and sign the user out everywhere."""
    check_password_rules(password)
    user.password_hash = await new_password_hash(password)
    await user.save(update_fields=["password_hash"])
    await end_all(user)
