"""Tasks as values: ``@task`` turns an ``async def`` into a ``Task``; ``Registry`` lists them.

Nothing registers itself on import: an application passes an explicit list of tasks.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, get_type_hints

from pydantic import BaseModel, ValidationError

from jobrunner.domain.retry import RetryPolicy
from jobrunner.errors import ConfigError, InvalidParamsError, UnknownTaskError

P = TypeVar("P", bound=BaseModel)
TaskFn = Callable[[Any, P], Awaitable[Any]]
Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Task(Generic[P]):
    """A named coroutine with its params model, limits and default queue."""

    name: str
    fn: TaskFn[P]
    params_model: type[P]
    timeout_seconds: float | None = None
    max_timeout_seconds: float | None = None
    retry: RetryPolicy | None = None
    max_tries_limit: int = 20
    queue: str | None = None
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def parse(self, params: Any) -> P:
        """Validate params against the model; errors name each field's path."""
        try:
            return self.params_model.model_validate(params)
        except ValidationError as exc:
            errors = [
                {
                    "loc": ".".join(str(p) for p in e["loc"]) or "(root)",
                    "msg": e["msg"],
                    "type": e["type"],
                }
                for e in exc.errors(include_url=False)
            ]
            raise InvalidParamsError(self.name, errors) from exc

    def params_schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema()


def _params_model_of(fn: Callable[..., Any]) -> type[BaseModel]:
    hints = get_type_hints(fn)
    names = list(inspect.signature(fn).parameters)
    if len(names) != 2:
        raise ConfigError(f"task {fn.__name__} must take (ctx, params)")
    model = hints.get(names[1])
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        raise ConfigError(f"task {fn.__name__}: annotate params with a pydantic model")
    return model


def task(
    name: str,
    *,
    params: type[P] | None = None,
    timeout: float | None = None,
    max_timeout: float | None = None,
    retry: RetryPolicy | None = None,
    queue: str | None = None,
    description: str = "",
) -> Callable[[TaskFn[P]], Task[P]]:
    """Declare a task. The params model defaults to the annotation of the second argument."""

    def wrap(fn: TaskFn[P]) -> Task[P]:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigError(f"task {name} must be an async def function")
        model: type[Any] = params or _params_model_of(fn)
        doc = description or inspect.getdoc(fn) or ""
        return Task(
            name=name,
            fn=fn,
            params_model=model,
            timeout_seconds=timeout,
            max_timeout_seconds=max_timeout,
            retry=retry,
            queue=queue,
            description=doc.split("\n\n")[0],
        )

    return wrap


class Registry:
    """The tasks one application knows, by name."""

    def __init__(self, tasks: Iterable[Task[Any]] = (), closers: Iterable[Closer] = ()) -> None:
        self._tasks: dict[str, Task[Any]] = {}
        for t in tasks:
            if t.name in self._tasks:
                raise ConfigError(f"task {t.name!r} is listed twice")
            self._tasks[t.name] = t
        self._closers = list(closers)

    def on_close(self, closer: Closer) -> None:
        """Run ``closer`` when the worker stops: tasks' shared resources (process pools)."""
        self._closers.append(closer)

    async def close(self) -> None:
        """Run every closer, each once, even if one fails (the failure is re-raised after)."""
        closers, self._closers = self._closers, []
        errors = []
        for closer in closers:
            try:
                await closer()
            except Exception as exc:  # the others still get to close
                errors.append(exc)
        if errors:
            raise errors[0]

    def get(self, name: str) -> Task[Any]:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTaskError(name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def __iter__(self) -> Any:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def merged(self, other: Iterable[Task[Any]]) -> Registry:
        return Registry([*self._tasks.values(), *other], self._closers)
