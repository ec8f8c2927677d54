"""Blob storage for uploads, large results and pipeline outputs, addressed by ``blob://`` refs.

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

_REF = re.compile(r"^blob://([0-9a-f]{32})(?:/([A-Za-z0-9._\-]{1,200}))?$")


class BlobStore(Protocol):
    async def put_bytes(self, data: bytes, *, name: str = "data") -> str: ...

    async def put_file(self, path: Path, *, name: str | None = None) -> str: ...

    async def get_bytes(self, ref: str) -> bytes: ...

    async def local_path(self, ref: str) -> Path: ...

    async def delete(self, ref: str) -> None: ...


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._\-]", "_", name)[:200].lstrip(".")
    return cleaned or "data"


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

    def _write(self, data: bytes, name: str) -> str:
        blob_id = uuid.uuid4().hex
        folder = self.root / blob_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        return f"blob://{blob_id}/{name}"

    def _copy(self, path: Path, name: str) -> str:
        blob_id = uuid.uuid4().hex
        folder = self.root / blob_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        shutil.copyfile(path, tmp)
        os.replace(tmp, folder / name)
        return f"blob://{blob_id}/{name}"

    async def put_bytes(self, data: bytes, *, name: str = "data") -> str:
        return await asyncio.to_thread(self._write, data, _safe_name(name))

    async def put_file(self, path: Path, *, name: str | None = None) -> str:
        return await asyncio.to_thread(self._copy, path, _safe_name(name or path.name))

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
