"""Reading documents from a file, one record at a time: JSONL (BEIR ``corpus.jsonl``), CSV/TSV with
a header, or plain text (one document per line). Nothing is held beyond the current line.

A record's text is ``title + " " + text`` when a title field is given and non-empty, as
sentence-transformers and MTEB join them. A bad row (invalid JSON, a missing field, a value that
is not text) becomes a ``BadRow`` naming its line, for the caller to skip or fail on.
"""

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class Record:
    line: int   # 1-based line number in the input (the header is line 1 in CSV/TSV)
    id: str
    text: str


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass(frozen=True)
class Fields:
    text: str = "text"
    id: str = "_id"
    title: str | None = "title"


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}.get(suffix, "text")


@dataclass(frozen=True)
class ByteRange:
    """Part of a line-oriented file (JSONL, TSV, text): bytes [start, stop), whose first line is
    ``first_line``; a TSV part carries the file's ``header`` (its line 1)."""
    start: int
    stop: int
    first_line: int
    header: tuple[str, ...] | None = None


def read_records(path: Path, fields: Fields = Fields(), fmt: str | None = None,
                 part: ByteRange | None = None) -> Iterator[Record | BadRow]:
    """The records of the file, or of one ``part`` of it (the same records, numbered the same)."""
    fmt = fmt or detect_format(path)
    first = part.first_line if part else 1
    with _open_text(path, part, newline=None if fmt == "jsonl" else "") as f:
        if fmt == "jsonl":
            yield from _jsonl(f, fields, first)
        elif fmt in ("csv", "tsv"):
            yield from _table(f, fields, "\t" if fmt == "tsv" else ",", first, part.header if part else None)
        else:
            for n, line in enumerate(f, first):
                yield Record(n, str(n - 1), line.rstrip("\r\n"))


def _open_text(path: Path, part: ByteRange | None, newline: str | None):
    if part is None:
        return open(path, encoding="utf-8", newline=newline)
    raw = open(path, "rb")
    raw.seek(part.start)
    return io.TextIOWrapper(io.BufferedReader(_Bounded(raw, part.stop - part.start)), encoding="utf-8", newline=newline)


class _Bounded(io.RawIOBase):
    """A binary file read up to ``limit`` bytes from where it stands."""

    def __init__(self, f, limit: int):
        self.f, self.left = f, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.f.readinto(memoryview(buffer)[:min(len(buffer), self.left)]) if self.left > 0 else 0
        self.left -= n
        return n

    def close(self):
        self.f.close()
        super().close()


def _record(n: int, row: dict, fields: Fields) -> Record | BadRow:
    for name in (fields.id, fields.text):
        if name not in row:
            return BadRow(n, f"missing field {name!r}")
    text, title = row[fields.text], row.get(fields.title) if fields.title else None
    if not isinstance(text, str):
        return BadRow(n, f"field {fields.text!r} is {type(text).__name__}, not text")
    if title is not None and not isinstance(title, str):
        return BadRow(n, f"field {fields.title!r} is {type(title).__name__}, not text")
    doc_id = row[fields.id]
    if not isinstance(doc_id, (str, int)) or isinstance(doc_id, bool):
        return BadRow(n, f"field {fields.id!r} is {type(doc_id).__name__}, not a string or integer id")
    return Record(n, str(doc_id), f"{title} {text}" if title else text)


def _jsonl(f, fields: Fields, first: int):
    for n, line in enumerate(f, first):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield BadRow(n, f"invalid JSON ({e.msg} at column {e.colno})")
            continue
        yield _record(n, row, fields) if isinstance(row, dict) else BadRow(n, "not a JSON object")


def _table(f, fields: Fields, delimiter: str, first: int, header: tuple | None):
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    header = header or next(reader, None)
    if header is None:
        return
    for row in reader:
        n = reader.line_num + first - 1
        if len(row) != len(header):
            yield BadRow(n, f"{len(row)} columns, the header has {len(header)}")
            continue
        yield _record(n, dict(zip(header, row)), fields)
