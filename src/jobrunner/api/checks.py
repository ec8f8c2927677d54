"""Checks a submission passes before it reaches the JobRunner: the plan it may use, a
callback URL that is not aimed inside our network, and input refs that are the caller's own."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

from jobrunner.api.auth import Principal
from jobrunner.api.problems import Problem
from jobrunner.api.services import ApiServices
from jobrunner.errors import PermanentError
from jobrunner.pipelines.urlcheck import check_address, parse_url
from jobrunner.settings import Settings

__all__ = ["check_callback_url", "check_params_refs", "choose_plan", "invalid"]

_REF_SCHEMES = ("blob://", "upload://", "file://")


def invalid(loc: str, msg: str, code: str = "invalid_request") -> Problem:
    """422 naming one field."""
    return Problem(422, code, f"{loc}: {msg}", errors=[{"loc": loc, "msg": msg}])


def choose_plan(principal: Principal, wanted: str | None, settings: Settings) -> str:
    """The key's plan, or a lower one it asks for (plans are listed highest first); a higher
    plan is 403."""
    if wanted is None or wanted == principal.plan:
        return principal.plan
    plans = list(settings.plans)
    if wanted not in plans:
        raise invalid("plan", f"unknown plan; plans: {plans}")
    if principal.plan in plans and plans.index(wanted) > plans.index(principal.plan):
        return wanted
    raise Problem(
        403,
        "plan_not_allowed",
        f"a {principal.plan} key cannot send jobs to the {wanted} queue",
        plan=wanted,
    )


def check_callback_url(url: str, *, allow_private: bool) -> None:
    """http(s) only, and no literal private, loopback or link-local address (nor localhost)
    unless JOBRUNNER_CONNECTOR_ALLOW_PRIVATE; names are resolved and checked again when the
    callback is delivered."""
    try:
        target = parse_url(url)
        literal = _ip_literal(target.host)
        if literal is not None:
            check_address(target.host, literal, allow_private=allow_private)
        elif _is_localhost(target.host) and not allow_private:
            raise PermanentError(
                f"{target.host} is loopback, which is not an allowed target",
                code="url_target_not_allowed",
            )
    except PermanentError as exc:
        raise invalid("callback_url", exc.message, code="invalid_callback_url") from exc


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def _is_localhost(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")


def _refs(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, value) of every string in ``value`` that names a blob or a file."""
    if isinstance(value, str) and value.startswith(_REF_SCHEMES):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _refs(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _refs(item, f"{path}.{index}")


async def check_params_refs(api: ApiServices, tenant: str, params: dict[str, Any]) -> None:
    """Every upload or output a job names must be the caller's own (another tenant's looks
    exactly like one that does not exist); local files are never an HTTP client's to name."""
    for loc, ref in _refs(params, "params"):
        if ref.startswith("file://"):
            raise invalid(loc, "file:// inputs are not accepted over HTTP; upload the file")
        async with api.guard("check input"):
            owner = await api.blob_index.owner(ref)
        if owner is None or owner.tenant != tenant:
            raise invalid(loc, "no such upload or output (or it has expired)", "unknown_input")
