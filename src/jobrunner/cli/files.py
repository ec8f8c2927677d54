"""Commands on the blob store (JOBRUNNER_DATA_DIR): upload a pipeline input, download an output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from jobrunner.cli.common import (
    check_url,
    client_settings,
    dump,
    json_option,
    load_settings,
    run,
)
from jobrunner.cli.show import size
from jobrunner.errors import InvalidInputError
from jobrunner.runtime import JobRunner
from jobrunner.settings import Settings
from jobrunner.store.blob_backends import blob_store
from jobrunner.store.blobindex import BlobIndex, content_type_of
from jobrunner.store.blobs import BlobStore, parse_ref
from jobrunner.tasks.catalog import build_registry

_REF_SCHEMES = ("blob://", "upload://")


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--tenant",
    default="default",
    show_default=True,
    help="Whose upload it is: only this tenant's jobs may read it.",
)
def upload(path: Path, tenant: str) -> None:
    """Copy a local file into the blob store (JOBRUNNER_BLOB_URL, else the data dir) and print
    its upload:// uri (what a task's input_uri takes).

    With JOBRUNNER_REDIS_URL set (as `jobrunner env` exports it), the upload is recorded as
    TENANT's, so the daily cleanup deletes it after JOBRUNNER_UPLOAD_RETENTION_HOURS, as it
    does uploads made through the API."""
    settings = load_settings()
    if settings.redis_url is not None:
        check_url(settings.redis_url)

    async def go() -> str:
        ref = await blob_store(settings).put_file(path, scheme="upload")
        if settings.redis_url is None:
            click.echo(
                "warning: JOBRUNNER_REDIS_URL is not set: this upload is not recorded, "
                "so the cleanup will not delete it",
                err=True,
            )
            return ref
        await _record_upload(settings, ref, tenant, path.name)
        return ref

    click.echo(run(go))


async def _record_upload(settings: Settings, ref: str, tenant: str, name: str) -> None:
    """Owned by ``tenant`` and due for the cleanup after the upload retention."""
    async with JobRunner(settings, build_registry(settings), warn_unserved=False) as runner:
        index = BlobIndex(runner.redis, runner.keys, ttl_seconds=settings.upload_retention_seconds)
        await index.record(ref, tenant=tenant, content_type=content_type_of(name))


@click.command()
@click.argument("ref")
@click.argument("field", required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path, allow_dash=True),
    help="File to write, or - for stdout. Default: the ref's file name, here.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@json_option
def download(ref: str, field: str | None, output: Path | None, force: bool, as_json: bool) -> None:
    """Save a blob:// or upload:// REF (as a job's result shows it) to a file.

    REF may also be a job id (or its first 8 characters): FIELD then names the ref in its
    result, e.g. `jobrunner download 3f2a9c1e report_ref` (FIELD may be left out when the
    result holds one ref).
    """
    by_ref = ref.startswith(_REF_SCHEMES)
    settings = load_settings() if by_ref else client_settings()

    async def go() -> dict[str, Any]:
        wanted = ref if by_ref else await _ref_in_result(settings, ref, field)
        return await _save(blob_store(settings), wanted, output, force)

    saved = run(go)
    if as_json:
        dump(saved)
    elif saved["path"] != "-":
        click.echo(f"saved {saved['ref']} to {saved['path']} ({size(saved['bytes'])})")


async def _ref_in_result(settings: Settings, job: str, field: str | None) -> str:
    async with JobRunner(settings, build_registry(settings), warn_unserved=False) as runner:
        job_id = await runner.resolve_id(job)
        result = await runner.result(job_id)
    fields = result.items() if isinstance(result, dict) else []
    refs = {k: v for k, v in fields if isinstance(v, str) and v.startswith(_REF_SCHEMES)}
    if field is not None and field in refs:
        return refs[field]
    if field is None and len(refs) == 1:
        return next(iter(refs.values()))
    named = ", ".join(sorted(refs)) or "none (has it succeeded?)"
    ask = f"no ref {field!r}" if field else "name the one to download"
    raise InvalidInputError(f"job {job_id}: {ask}; refs in its result: {named}", job_id=job_id)


async def _save(store: BlobStore, ref: str, output: Path | None, force: bool) -> dict[str, Any]:
    """Stream the blob to ``output`` (a temp file renamed at the end) or to stdout."""
    blob_id, name = parse_ref(ref)
    await store.size(ref)  # BlobNotFoundError first, before any file is made
    if output is not None and str(output) == "-":
        written = await _copy(store, ref, sys.stdout.buffer)
        return {"ref": ref, "path": "-", "bytes": written}
    target = output or Path(name or blob_id)
    if not force and await asyncio.to_thread(target.exists):
        raise InvalidInputError(f"{target} exists: choose another with -o, or pass --force")
    partial = target.with_name(f".{target.name}.part")
    try:
        sink = await asyncio.to_thread(partial.open, "wb")
        try:
            written = await _copy(store, ref, sink)
        finally:
            await asyncio.to_thread(sink.close)
        await asyncio.to_thread(os.replace, partial, target)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(partial.unlink)
    return {"ref": ref, "path": str(target), "bytes": written}


async def _copy(store: BlobStore, ref: str, sink: BinaryIO) -> int:
    written = 0
    async for piece in store.iter_bytes(ref):
        await asyncio.to_thread(sink.write, piece)
        written += len(piece)
    await asyncio.to_thread(sink.flush)
    return written
