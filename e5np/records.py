"""Reading documents from a file, one record at a time: JSONL (BEIR ``corpus.jsonl``), CSV/TSV with
a header, or plain text (one document per line). Nothing is held beyond the current line.

A record's text is ``title + " " + text`` when a title field is given and non-empty, as
sentence-transformers and MTEB join them. A bad row (invalid JSON, a missing field, a value that
is not text) becomes a ``BadRow`` naming its line, for the caller to skip or fail on.
"""

import csv
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


def read_records(path: Path, fields: Fields = Fields(), fmt: str | None = None) -> Iterator[Record | BadRow]:
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        yield from _jsonl(path, fields)
    elif fmt in ("csv", "tsv"):
        yield from _table(path, fields, "\t" if fmt == "tsv" else ",")
    else:
        with open(path, encoding="utf-8", newline="") as f:
            for n, line in enumerate(f, 1):
                yield Record(n, str(n - 1), line.rstrip("\r\n"))


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


def _jsonl(path: Path, fields: Fields):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield BadRow(n, f"invalid JSON ({e.msg} at column {e.colno})")
                continue
            yield _record(n, row, fields) if isinstance(row, dict) else BadRow(n, "not a JSON object")


def _table(path: Path, fields: Fields, delimiter: str):
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
        header = next(reader, None)
        if header is None:
            return
        for row in reader:
            n = reader.line_num
            if len(row) != len(header):
                yield BadRow(n, f"{len(row)} columns, the header has {len(header)}")
                continue
            yield _record(n, dict(zip(header, row)), fields)
