"""The dashboard: server-rendered pages at ``/dashboard`` of the API's own app (Jinja2
templates, a stylesheet and a small script served from this package; no CDN, no build step).

Sign in with the admin token (the operator: every tenant, cancel, retry, API keys) or a tenant's
API key (read-only, that tenant's jobs). Live parts are Server-Sent Events.
"""

from jobrunner.dashboard.routes import routes

__all__ = ["routes"]
