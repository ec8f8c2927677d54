"""Who may see and do what. A handler's first line says what it needs:
``who = await viewer(request)`` (signed in), ``viewer(request, admin=True)`` (the operator),
and every POST reads its form through ``checked_form`` (CSRF token and origin).

A tenant sees only its own jobs, read-only; the admin sees every tenant and acts."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request

from jobrunner.api.services import ApiServices
from jobrunner.dashboard.session import Session
from jobrunner.dashboard.state import DashboardState, dashboard
from jobrunner.domain.models import JobRecord
from jobrunner.errors import JobNotFoundError
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings

__all__ = [
    "NotAllowed",
    "SignInRequired",
    "Viewer",
    "checked_form",
    "session_of",
    "viewer",
]


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form, streams and actions answer 401."""


class NotAllowed(Exception):
    """403: an operator's page seen by a tenant, or a form that fails its CSRF checks."""


@dataclass(frozen=True)
class Viewer:
    session: Session
    state: DashboardState

    @property
    def api(self) -> ApiServices:
        return self.state.api

    @property
    def runner(self) -> JobRunner:
        return self.state.api.runner

    @property
    def settings(self) -> Settings:
        return self.state.api.settings

    @property
    def is_admin(self) -> bool:
        return self.session.is_admin

    @property
    def tenant(self) -> str | None:
        """The only tenant this viewer may see; None for the admin, who sees them all."""
        return None if self.session.is_admin else self.session.tenant

    async def job(self, job_id: str) -> JobRecord:
        """A job this viewer may see: another tenant's job is 'not found', like no job."""
        record = await self.runner.get(job_id)
        if self.tenant is not None and record.tenant != self.tenant:
            raise JobNotFoundError(job_id)
        return record


async def session_of(request: Request) -> Session:
    """The request's session as checked now (anonymous when missing, expired or revoked)."""
    state = dashboard(request)
    async with state.api.guard("dashboard session"):
        session = await state.codec.load(request, state.api.api_keys)
    request.state.dashboard_session = session
    return session


async def viewer(request: Request, *, admin: bool = False) -> Viewer:
    session = await session_of(request)
    if not session.signed_in:
        raise SignInRequired
    request.state.tenant = session.tenant  # for the access log
    if admin and not session.is_admin:
        raise NotAllowed("This page is for operators: sign in with the admin token.")
    return Viewer(session, dashboard(request))


async def checked_form(request: Request, session: Session) -> FormData:
    """The POSTed form, once its CSRF token matches the session's and it came from a page
    of this site (``Origin``/``Sec-Fetch-Site``, where the browser sends them)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise NotAllowed("This form was sent from another site.")
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise NotAllowed("This form was sent from another site.")
    form = await request.form(max_files=0, max_fields=20, max_part_size=16 * 1024)
    token = form.get("csrf_token")
    if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
        raise NotAllowed("The form has expired or did not come from this page: reload it.")
    return form
