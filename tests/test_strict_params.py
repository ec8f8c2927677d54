"""Every shipped task refuses params it does not know, at enqueue, naming the field; pipeline
inputs must be in the blob store (a local path is refused with a hint to `jobrunner upload`)."""

from __future__ import annotations

from typing import Any

import pytest

from jobrunner.errors import InvalidParamsError
from jobrunner.registry import Task
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.tasks.catalog import build_registry

# everything jobrunner ships: the demo tasks, the pipelines and webhook delivery
SHIPPED = {t.name: t for t in build_registry(Settings(_env_file=None, demo_tasks=True))}  # type: ignore[call-arg]
OPEN_BY_DESIGN = {"demo.echo"}  # returns its params, whatever they are
REF = "upload://" + "0" * 32 + "/catalog.csv"
VALID: dict[str, dict[str, Any]] = {
    "demo.sleep": {},
    "demo.flaky": {},
    "validate_csv": {"input_uri": REF},
    "correct_csv": {"input_uri": REF},
    "process_pdf": {"input_uri": REF},
    "generate_report": {
        "input_uri": REF,
        "group_by": ["a"],
        "metrics": [{"column": "b", "agg": "sum"}],
    },
    "sync_connector": {"url": "https://example.com/feed.csv"},
    "jobrunner.deliver_webhook": {"job_id": "0" * 32},
}


def test_every_shipped_task_is_covered() -> None:
    assert set(SHIPPED) == set(VALID) | OPEN_BY_DESIGN


@pytest.mark.parametrize("name", sorted(VALID))
def test_an_unknown_field_is_refused_naming_it(name: str) -> None:
    task: Task[Any] = SHIPPED[name]
    task.parse(VALID[name])  # the valid params pass
    with pytest.raises(InvalidParamsError) as refused:
        task.parse({**VALID[name], "secs": 5})
    assert refused.value.details["errors"] == [
        {"loc": "secs", "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    assert "secs: Extra inputs are not permitted" in refused.value.message


def test_echo_takes_any_field() -> None:
    assert SHIPPED["demo.echo"].parse({"anything": 1}).model_dump() == {"anything": 1}


@pytest.mark.parametrize(
    ("uri", "kind", "says"),
    [
        ("catalog.csv", "local_path", "run `jobrunner upload catalog.csv`"),
        ("/home/me/catalog.csv", "local_path", "`jobrunner upload /home/me/catalog.csv`"),
        ("https://example.com/c.csv", "remote_input", "the sync_connector task fetches it"),
        ("s3://bucket/c.csv", "input_uri_scheme", "must be upload://, blob:// or file://"),
    ],
)
async def test_pipeline_inputs_outside_the_blob_store_are_refused_at_enqueue(
    runner: JobRunner, uri: str, kind: str, says: str
) -> None:
    for name in ("validate_csv", "correct_csv", "process_pdf", "generate_report"):
        with pytest.raises(InvalidParamsError) as refused:
            await runner.enqueue(name, {**VALID[name], "input_uri": uri})
        (error,) = refused.value.details["errors"]
        assert error["loc"] == "input_uri" and error["type"] == kind
        assert says in error["msg"]
    assert (await runner.list()).total == 0
