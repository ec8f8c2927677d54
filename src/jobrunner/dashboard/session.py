"""Who is signed in to the dashboard: a signed session cookie, and the CSRF token of its forms.

The cookie carries ``{role, tenant, key_id, admin, csrf}`` as JSON signed and timestamped by
itsdangerous: its holder can read it, nobody can forge or extend it without the secret. It is
``HttpOnly``, ``SameSite=Strict``, scoped to ``/dashboard`` and ``Secure`` when the request
came over TLS. Every request checks again what the cookie names: a tenant session needs its
API key to still exist (revoking the key signs it out), an admin session needs the admin token
it was opened with to still be the one configured.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import structlog
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from jobrunner.settings import Settings
from jobrunner.store.tenants import ApiKeys

__all__ = ["COOKIE", "PATH", "Session", "SessionCodec", "session_secret"]

COOKIE = "jobrunner_dashboard"
PATH = "/dashboard"
Role = Literal["admin", "tenant"]
log = structlog.get_logger("jobrunner.dashboard")


@dataclass(frozen=True)
class Session:
    """A visitor: anonymous (only a CSRF token, for the sign-in form) or signed in."""

    csrf: str
    role: Role | None = None
    tenant: str | None = None  # a tenant session's tenant; None for the admin
    key_id: str | None = None  # the API key a tenant signed in with
    admin: str | None = None  # which admin token an admin session was opened with

    @property
    def signed_in(self) -> bool:
        return self.role is not None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def who(self) -> str:
        return "admin" if self.is_admin else f"tenant {self.tenant}"


def anonymous() -> Session:
    return Session(csrf=secrets.token_urlsafe(32))


def session_secret(settings: Settings) -> bytes | None:
    """The configured secret, else one derived from the admin token (so every API process
    agrees); None when neither is set."""
    if settings.dashboard_secret is not None:
        return settings.dashboard_secret.get_secret_value().encode()
    if settings.admin_token is not None:
        token = settings.admin_token.get_secret_value().encode()
        return hashlib.sha256(b"jobrunner.dashboard.session\0" + token).digest()
    return None


class SessionCodec:
    """Reads, checks and writes session cookies for one app."""

    def __init__(self, settings: Settings) -> None:
        secret = session_secret(settings)
        if secret is None:
            secret = secrets.token_bytes(32)
            log.warning(
                "no JOBRUNNER_DASHBOARD_SECRET nor admin token: dashboard sessions last only "
                "as long as this process and are not shared with other API processes"
            )
        self._serializer = URLSafeTimedSerializer(secret, salt="jobrunner.dashboard.session")
        self.max_age = settings.dashboard_session_seconds
        admin = settings.admin_token
        self._admin_token = admin.get_secret_value() if admin is not None else None
        self.admin_mark = (
            hmac.new(secret, self._admin_token.encode(), "sha256").hexdigest()[:24]
            if self._admin_token is not None
            else None
        )

    def is_admin_token(self, text: str) -> bool:
        token = self._admin_token
        return token is not None and hmac.compare_digest(token.encode(), text.encode())

    def decode(self, raw: str | None) -> Session | None:
        if not raw:
            return None
        try:
            data: Any = self._serializer.loads(raw, max_age=self.max_age)
            session = Session(**data)
        except (BadSignature, TypeError, ValueError):
            return None
        if not isinstance(session.csrf, str) or len(session.csrf) < 32:
            return None
        return session

    async def load(self, request: Request, api_keys: ApiKeys) -> Session:
        """The request's session, checked against what it names now; anonymous otherwise."""
        session = self.decode(request.cookies.get(COOKIE))
        if session is None:
            return anonymous()
        if session.role == "admin":
            valid = self.admin_mark is not None and session.admin == self.admin_mark
        elif session.role == "tenant" and session.key_id:
            key = await api_keys.get(session.key_id)
            valid = key is not None and key.tenant == session.tenant
        else:
            valid = session.role is None
        return session if valid else Session(csrf=session.csrf)

    def admin(self) -> Session:
        return replace(anonymous(), role="admin", admin=self.admin_mark)

    @staticmethod
    def tenant(tenant: str, key_id: str) -> Session:
        return replace(anonymous(), role="tenant", tenant=tenant, key_id=key_id)

    def store(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(asdict(session)),
            max_age=self.max_age,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def clear(request: Request, response: Response) -> None:
        response.delete_cookie(
            COOKIE,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
