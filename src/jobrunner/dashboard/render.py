"""Pages as HTML responses: one ``render`` that adds what every page shares (the viewer, the
CSRF token, the navigation) and strict security headers, and ``html_errors``, which turns what
a handler raises into a page a person can read (sign-in redirect, 403, 404, 409, 503)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from jobrunner.api.problems import Problem
from jobrunner.dashboard.access import NotAllowed, SignInRequired
from jobrunner.dashboard.session import PATH, Session
from jobrunner.dashboard.state import dashboard
from jobrunner.errors import JobRunnerError, NotFoundError, RedisUnavailableError

__all__ = ["SECURITY_HEADERS", "html_errors", "redirect", "render"]

log = structlog.get_logger("jobrunner.dashboard")

# Everything comes from this origin: no CDN, no external font, no inline script or style.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Handler = Callable[[Request], Awaitable[Response]]


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` plus ``session``, ``csrf`` and ``path``."""
    state = dashboard(request)
    session: Session | None = getattr(request.state, "dashboard_session", None)
    html = state.templates.get_template(template).render(
        session=session,
        csrf=session.csrf if session else "",
        path=request.url.path,
        base=PATH,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """303 See Other: after a POST, the browser GETs ``url`` (a reload repeats nothing)."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def _error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", status=status, title=title, detail=detail)


def html_errors(handler: Handler) -> Handler:
    """Run ``handler``; what it raises becomes an HTML page (or a redirect to sign in)."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except SignInRequired:
            if request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(f"{PATH}/login?next={quote(target, safe='')}")
            return _error(request, 401, "Signed out", "Sign in again to do that.")
        except NotAllowed as exc:
            return _error(request, 403, "Not allowed", str(exc))
        except Problem as exc:
            return _error(request, exc.status, exc.title, exc.detail)
        except NotFoundError as exc:
            return _error(request, 404, "Not found", exc.message)
        except RedisUnavailableError as exc:
            log.warning("dashboard page failed", code=exc.code, error=exc.message)
            return _error(request, 503, "Redis is unavailable", exc.message)
        except JobRunnerError as exc:
            status = exc.http_status if 400 <= exc.http_status < 500 else 500
            return _error(request, status, "That did not work", exc.message)

    return run
