"""What the dashboard's handlers share, built once per app from the API's services: the
session codec, the templates and the store readers the pages use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from starlette.requests import HTTPConnection

from jobrunner.api.services import ApiServices, services
from jobrunner.dashboard.session import SessionCodec
from jobrunner.domain.views import iso_utc
from jobrunner.store.listing import JobIndex
from jobrunner.store.minutes import MinuteStats

__all__ = ["DashboardState", "dashboard"]


@dataclass
class DashboardState:
    api: ApiServices
    codec: SessionCodec = field(init=False)
    templates: Environment = field(init=False)
    index: JobIndex = field(init=False)
    minutes: MinuteStats = field(init=False)

    def __post_init__(self) -> None:
        runner = self.api.runner
        self.codec = SessionCodec(self.api.settings)
        self.templates = _environment()
        self.index = JobIndex(runner.store)
        self.minutes = MinuteStats(runner.redis, runner.keys)


def dashboard(conn: HTTPConnection) -> DashboardState:
    """This app's dashboard state (made on first use, again if the lifespan restarted)."""
    api = services(conn)
    found = getattr(conn.app.state, "dashboard", None)
    if not isinstance(found, DashboardState) or found.api is not api:
        found = DashboardState(api)
        conn.app.state.dashboard = found
    return found


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("jobrunner.dashboard", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["iso"] = lambda value: iso_utc(value) if value else "—"
    env.filters["ago"] = ago
    env.filters["pretty"] = pretty_json
    env.filters["seconds"] = seconds
    env.filters["quote"] = lambda value: quote(str(value), safe="")
    return env


def ago(value: datetime | float | None, now: datetime | None = None) -> str:
    """'3 s ago', '5 min ago', 'in 2 h': how far ``value`` (a datetime or epoch ms) is."""
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    delta = ((now or datetime.now(tz=UTC)) - value).total_seconds()
    text = seconds(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def seconds(value: float | None) -> str:
    """A duration for people: '850 ms', '12.5 s', '4 min', '3 h', '2 d'."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
    if value < 3600:
        return f"{value / 60:.0f} min"
    if value < 86400:
        return f"{value / 3600:.0f} h"
    return f"{value / 86400:.0f} d"


def pretty_json(value: Any) -> Markup:
    """Indented JSON, escaped for HTML (a ``<`` in a string stays text)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return Markup.escape(text)
