"""Blob storage for uploads, large results and pipeline outputs.

Refs look like ``blob://<id>/<name>`` (outputs) or ``upload://<id>/<name>`` (inputs brought in
by uploads and connectors); both live in the same store.

``BlobStore`` is the interface; ``FileBlobStore`` keeps blobs under the data dir. File I/O
runs in a thread so the event loop never blocks on a disk.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Protocol

from jobrunner.errors import BlobNotFoundError

_REF = re.compile(r"^(?:blob|upload)://([0-9a-f]{32})(?:/([A-Za-z0-9._\-]{1,200}))?$")


class BlobStore(Protocol):
    async def put_bytes(self, data: bytes, *, name: str = "data", scheme: str = "blob") -> str: ...

    async def put_file(
        self, path: Path, *, name: str | None = None, scheme: str = "blob"
    ) -> str: ...

    async def get_bytes(self, ref: str) -> bytes: ...

    async def local_path(self, ref: str) -> Path: ...

    async def delete(self, ref: str) -> None: ...


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._\-]", "_", name)[:200].lstrip(".")
    return cleaned or "data"


def _scheme(scheme: str) -> str:
    if scheme not in ("blob", "upload"):
        raise ValueError(f"blob refs are blob:// or upload://, not {scheme}://")
    return scheme


class FileBlobStore:
    """Blobs as files ``<root>/<id>/<name>``; writes go to a temp file, then an atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: str) -> Path:
        match = _REF.fullmatch(ref)
        if not match:
            raise BlobNotFoundError(f"not a blob ref: {ref!r}", ref=ref)
        folder = self.root / match.group(1)
        if match.group(2):
            return folder / match.group(2)
        entries = sorted(folder.glob("*")) if folder.is_dir() else []
        if not entries:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref)
        return entries[0]

    def _write(self, data: bytes, name: str, scheme: str) -> str:
        blob_id = uuid.uuid4().hex
        folder = self.root / blob_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        return f"{scheme}://{blob_id}/{name}"

    def _copy(self, path: Path, name: str, scheme: str) -> str:
        blob_id = uuid.uuid4().hex
        folder = self.root / blob_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, folder / name)
        return f"{scheme}://{blob_id}/{name}"

    async def put_bytes(self, data: bytes, *, name: str = "data", scheme: str = "blob") -> str:
        return await asyncio.to_thread(self._write, data, _safe_name(name), _scheme(scheme))

    async def put_file(self, path: Path, *, name: str | None = None, scheme: str = "blob") -> str:
        return await asyncio.to_thread(
            self._copy, path, _safe_name(name or path.name), _scheme(scheme)
        )

    async def get_bytes(self, ref: str) -> bytes:
        path = self._path(ref)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref) from exc

    async def local_path(self, ref: str) -> Path:
        path = self._path(ref)
        if not await asyncio.to_thread(path.is_file):
            raise BlobNotFoundError(f"no blob {ref!r}", ref=ref)
        return path

    async def delete(self, ref: str) -> None:
        match = _REF.fullmatch(ref)
        if match:
            await asyncio.to_thread(shutil.rmtree, self.root / match.group(1), True)
