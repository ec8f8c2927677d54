"""What a catalog CSV is before polars parses it: text or not, encoding, delimiter, decimals.

Files that are not UTF-8 (Latin-1/CP1252 from spreadsheets) are transcoded to UTF-8 in
fixed-size chunks into a temp file in the work dir, so polars always reads UTF-8 and memory
stays bounded whatever the file's size.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from jobrunner.errors import PermanentError

__all__ = ["Sniffed", "canonical_header", "sniff"]

DELIMITERS = (",", ";", "\t", "|")
_PROBE_BYTES = 64 * 1024
_CHUNK_BYTES = 4 * 1024 * 1024
_COMMA_DECIMAL = re.compile(r"^-?(?:R\$|\$|€)?\s*\d{1,3}(?:\.\d{3})*,\d{1,2}$|^-?\d+,\d{1,2}$")
_POINT_DECIMAL = re.compile(r"^-?(?:R\$|\$|€)?\s*\d{1,3}(?:,\d{3})*\.\d{1,2}$|^-?\d+\.\d{1,2}$")


@dataclass(frozen=True)
class Sniffed:
    path: Path  # UTF-8 without BOM issues: the original or a transcoded copy
    encoding: str  # the original's encoding
    delimiter: str
    decimal_comma: bool
    header: list[str]
    estimated_rows: int  # from the size and the first lines: for progress only


def sniff(
    path: Path, work_dir: Path, *, encoding: str | None = None, delimiter: str | None = None
) -> Sniffed:
    """Probe the first 64 KiB; transcode to UTF-8 when needed.

    Raises PermanentError ``csv_empty``, ``csv_not_text``, ``csv_encoding`` or
    ``input_not_found``.
    """
    head = _read_head(path)
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise PermanentError(f"{path.name} is empty", code="csv_empty")
    if _looks_binary(head):
        raise PermanentError(f"{path.name} is not a text file", code="csv_not_text")
    found = (encoding or _guess_encoding(head)).lower()
    utf8 = found in ("utf-8", "utf8", "utf-8-sig")
    readable = path if utf8 else _transcode(path, work_dir, found)
    text = _decode(head, found).lstrip("\ufeff")
    sep = delimiter or _guess_delimiter(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=sep))
    header = [h.strip() for h in rows[0]] if rows else []
    per_line = len(head) / max(head.count(b"\n"), 1)
    estimate = max(int(path.stat().st_size / per_line) - 1, 1)
    return Sniffed(readable, found, sep, _decimal_comma(rows[1:], sep), header, estimate)


def canonical_header(header: list[str], aliases: dict[str, list[str]]) -> dict[str, str]:
    """Original header -> canonical name, matching names and aliases loosely.

    A header that matches nothing keeps its (trimmed) name; when two headers would map to
    one canonical name the second keeps its own, so no data is silently merged.
    """
    lookup: dict[str, str] = {}
    for name, names in aliases.items():
        for alias in [name, *names]:
            lookup.setdefault(_loose(alias), name)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for original in header:
        canonical = lookup.get(_loose(original), original.strip())
        if canonical in taken:
            canonical = original
        mapping[original] = canonical
        taken.add(canonical)
    return mapping


def _loose(name: str) -> str:
    # Accents dropped too: exports write "Título" and "Titulo" for the same column.
    decomposed = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff").casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s_\-]+", "", bare)


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_PROBE_BYTES)
    except OSError as exc:
        raise PermanentError(f"cannot read {path.name}: {exc}", code="input_not_found") from exc


def _looks_binary(head: bytes) -> bool:
    # NUL never appears in text CSVs; other control bytes in bulk mean an image, zip, etc.
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return controls > len(head) // 100


def _guess_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the probe's end
            return "cp1252"
    return "utf-8"


def _decode(head: bytes, encoding: str) -> str:
    try:
        return head.decode(encoding, errors="replace")
    except LookupError as exc:
        raise PermanentError(f"unknown encoding {encoding!r}", code="csv_encoding") from exc


def _guess_delimiter(text: str) -> str:
    """The candidate that splits the first records into the same, largest number of fields."""
    sample = "\n".join(text.splitlines()[:50])
    best, best_score = ",", 0
    for sep in DELIMITERS:
        counts = [len(row) for row in csv.reader(io.StringIO(sample), delimiter=sep) if row]
        if not counts or counts[0] < 2:
            continue
        score = sum(1 for c in counts if c == counts[0]) * 1000 + counts[0]
        if score > best_score:
            best, best_score = sep, score
    return best


def _decimal_comma(rows: list[list[str]], sep: str) -> bool:
    """Brazilian Excel writes ``1.234,56``; only a ``;`` file can hold such unquoted values."""
    values = [v.strip() for row in rows[:200] for v in row]
    comma = sum(1 for v in values if _COMMA_DECIMAL.match(v))
    point = sum(1 for v in values if _POINT_DECIMAL.match(v))
    return comma > point or (sep == ";" and comma > 0 and comma >= point)


def _transcode(path: Path, work_dir: Path, encoding: str) -> Path:
    target = work_dir / f".{path.stem}.utf8.csv"
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    except LookupError as exc:
        raise PermanentError(f"unknown encoding {encoding!r}", code="csv_encoding") from exc
    # The incremental decoder carries a multi-byte character cut at a chunk edge over.
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(_CHUNK_BYTES):
            dst.write(decoder.decode(chunk))
        dst.write(decoder.decode(b"", final=True))
    return target
