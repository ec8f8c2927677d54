"""What crosses the socket between the worker and its pipeline children: JSON, never pickle.

A message is a length-prefixed JSON document. Values that JSON has no type for travel as
small tagged objects (``{"__wire__": tag, ...}``) and come back as what they were: tuples,
paths, and the few pipeline types listed in ``_TYPES`` (pydantic models as their JSON dump,
dataclasses field by field, named tuples item by item). Anything else (bytes, sets, a
polars frame, an object of a type not listed) raises :class:`WireError` where it is
encoded, instead of arriving as something else. A function crosses as a reference,
``"module:name"``, which the child resolves only inside the modules it was allowed.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import struct
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from types import FunctionType
from typing import Any

from pydantic import BaseModel

from jobrunner.errors import WireError
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.pdf import PdfResult
from jobrunner.pipelines.pdf_pages import Page
from jobrunner.pipelines.report import ReportResult, ReportSpec
from jobrunner.pipelines.validation.rules import Ruleset
from jobrunner.pipelines.validation.run import ValidationResult

__all__ = [
    "HEADER",
    "PIPELINE_MODULES",
    "dumps",
    "from_wire",
    "function_ref",
    "loads",
    "resolve",
    "to_wire",
]

HEADER = struct.Struct("!Q")  # the byte length of the JSON document that follows
TAG = "__wire__"
# The modules whose functions run in children (what the pipeline tasks send today).
PIPELINE_MODULES = (
    "jobrunner.pipelines.pdf_fallback",
    "jobrunner.pipelines.pdf_ranges",
    "jobrunner.pipelines.report",
    "jobrunner.pipelines.rows",
    "jobrunner.pipelines.validation.run",
)
_TYPES: dict[str, type] = {
    t.__name__: t
    for t in (InputLimits, Page, PdfResult, ReportResult, ReportSpec, Ruleset, ValidationResult)
}
_PLAIN = (str, int, float, bool, type(None))
_REFUSED = "pipeline_call_refused"


def dumps(message: Any) -> bytes:
    """A framed message; ``message`` is already plain JSON (see :func:`to_wire`)."""
    # surrogatepass: text from a PDF may hold lone surrogates, which must arrive as they left
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )
    return HEADER.pack(len(data)) + data


def loads(data: bytes) -> Any:
    return json.loads(data.decode("utf-8", "surrogatepass"))


def to_wire(value: Any) -> Any:
    """``value`` as plain JSON; WireError for what has no codec here."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [to_wire(v) for v in value]
    if kind is dict:
        return _dict_to_wire(value)
    if kind is tuple:
        return {TAG: "tuple", "items": [to_wire(v) for v in value]}
    if isinstance(value, PurePath):
        return {TAG: "path", "value": str(value)}
    if _TYPES.get(kind.__name__) is kind:
        return {TAG: kind.__name__, "value": _typed_to_wire(value)}
    raise WireError(f"a {kind.__module__}.{kind.__qualname__} cannot cross to or from a child")


def _dict_to_wire(value: dict[Any, Any]) -> dict[str, Any]:
    if any(type(key) is not str for key in value):
        raise WireError("a dict crossing to or from a child may only have str keys")
    items = {key: to_wire(v) for key, v in value.items()}
    return {TAG: "dict", "items": items} if TAG in value else items


def _typed_to_wire(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", round_trip=True)
    if isinstance(value, tuple):  # a named tuple
        return [to_wire(v) for v in value]
    return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}


def from_wire(data: Any) -> Any:
    """What :func:`to_wire` was given; WireError for a tag it does not know."""
    if type(data) is list:
        return [from_wire(v) for v in data]
    if type(data) is not dict:
        return data
    tag = data.get(TAG)
    if tag is None:
        return {key: from_wire(v) for key, v in data.items()}
    if tag == "dict":
        return {key: from_wire(v) for key, v in data["items"].items()}
    if tag == "tuple":
        return tuple(from_wire(v) for v in data["items"])
    if tag == "path":
        return Path(data["value"])
    kind = _TYPES.get(tag)
    if kind is None:
        raise WireError(f"unknown value type {tag!r} from the other process")
    return _typed_from_wire(kind, data["value"])


def _typed_from_wire(kind: type, value: Any) -> Any:
    if issubclass(kind, BaseModel):
        return kind.model_validate(value)
    if issubclass(kind, tuple):
        return kind(*(from_wire(v) for v in value))
    return kind(**{name: from_wire(v) for name, v in value.items()})


def function_ref(fn: Callable[..., Any]) -> str:
    """``"module:name"`` of a module-level function (what a child can import again)."""
    ref = f"{fn.__module__}:{fn.__qualname__}"
    if "." in fn.__qualname__ or "<" in fn.__qualname__:
        raise WireError(f"{ref} is not a module-level function: a child cannot import it")
    return ref


def resolve(ref: str, allowed: Iterable[str]) -> Callable[..., Any]:
    """The function ``ref`` names, imported; WireError ``pipeline_call_refused`` unless it is
    a public function defined in one of the ``allowed`` modules (not a name imported there)."""
    module_name, _, name = ref.partition(":")
    if module_name not in set(allowed) or not name.isidentifier() or name.startswith("_"):
        raise WireError(f"{ref!r} is not a function this process may run", code=_REFUSED)
    fn = getattr(importlib.import_module(module_name), name, None)
    if not isinstance(fn, FunctionType) or fn.__module__ != module_name:
        raise WireError(f"{ref!r} is not a function this process may run", code=_REFUSED)
    return fn
