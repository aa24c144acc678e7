"""A batch's rows: JSONL, or CSV with a header row, read as a stream and located by line.

Neither format is read whole, so a file may be larger than memory. Every problem is
a ``DataFileError`` naming ``FILE:LINE`` and the fix; ``check_rows`` reads the whole
file once before the batch makes its first call, so a bad row 9,000 stops the batch
before row 1 costs anything.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from agentops.errors import UsageError
from agentops.workflow.files import NotRegularFileError, open_regular
from agentops.workflow.inputs import is_required
from agentops.workflow.spec import Workflow
from agentops.workflow.suggest import did_you_mean

DataFormat = Literal["jsonl", "csv"]
_FORMATS: dict[str, DataFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


class DataFileError(UsageError):
    """A data file that cannot be read as rows (exit code 2)."""


@dataclass(frozen=True)
class Row:
    number: int  # 1-based, in input order
    line: int  # the file line it starts on
    values: Mapping[str, Any]


@dataclass(frozen=True)
class DataSummary:
    rows: int
    sha256: str


def data_format(path: Path) -> DataFormat:
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise DataFileError(
            f"{path}: cannot tell the format from the name; name it .jsonl (one JSON object per line) "
            "or .csv (with a header row)"
        )
    return found


def read_rows(path: Path) -> Iterator[Row]:
    """Each row in order; raises DataFileError at the first one that cannot be read."""
    try:
        stream = open_regular(path)
    except NotRegularFileError as error:
        raise DataFileError(
            f"{path} is {error.kind}, not a regular file; give the path of a .jsonl or .csv file"
        ) from None
    except OSError as error:
        raise DataFileError(
            f"{path}: cannot open the data file: {error.strerror or error}"
        ) from None
    with stream:
        if data_format(path) == "jsonl":
            yield from _jsonl_rows(path, stream)
        else:
            yield from _csv_rows(path, stream)


def _decoded_lines(path: Path, stream: BinaryIO) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(stream, 1):
        try:  # utf-8-sig: a byte order mark (Excel's "CSV UTF-8") is not part of the first column's name
            yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise DataFileError(
                f"{path}:{number}: byte 0x{raw[error.start]:02x} at column {error.start + 1} is not UTF-8; "
                "save the file as UTF-8"
            ) from None


def _jsonl_rows(path: Path, stream: BinaryIO) -> Iterator[Row]:
    count = 0
    for line, text in _decoded_lines(path, stream):
        if not text.strip():
            continue  # blank lines (a trailing newline, say) hold no row
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataFileError(
                f"{path}:{line}: not valid JSON ({error.msg} at column {error.colno}); "
                "each line must be one JSON object"
            ) from None
        if not isinstance(value, dict):
            raise DataFileError(
                f"{path}:{line}: a JSON {type(value).__name__}, not an object; "
                'each line must be one JSON object such as {"topic": "tides"}'
            )
        count += 1
        yield Row(count, line, value)


def _csv_rows(path: Path, stream: BinaryIO) -> Iterator[Row]:
    lines = _decoded_lines(path, stream)
    current = [0]

    def texts() -> Iterator[str]:
        for number, text in lines:
            current[0] = number
            yield text

    reader = csv.reader(texts(), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(name.strip() for name in header):
            raise DataFileError(f"{path}:1: no header row; the first line must name the columns")
        header = [name.strip() for name in header]
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise DataFileError(
                f"{path}:1: the header names column {duplicated[0]!r} twice; name each column once"
            )
        count = 0
        start = current[0] + 1
        for fields in reader:
            if not fields:
                start = current[0] + 1
                continue
            if len(fields) > len(header):
                raise DataFileError(
                    f"{path}:{start}: {len(fields)} fields, but the header names {len(header)} columns; "
                    "quote fields that contain commas"
                )
            count += 1
            yield Row(count, start, dict(zip(header, fields, strict=False)))
            start = current[0] + 1
    except csv.Error as error:
        raise DataFileError(
            f"{path}:{current[0]}: not valid CSV ({error}); check the quoting"
        ) from None


class InputMapping:
    """Which column feeds each workflow input: the input's own name, or ``--map INPUT=COLUMN``."""

    def __init__(self, workflow: Workflow, renames: Mapping[str, str]) -> None:
        declared = list(workflow.inputs)
        for name in renames:
            if name not in workflow.inputs:
                hint = did_you_mean(name, declared) or (
                    f"; this workflow declares: {', '.join(declared)}"
                    if declared
                    else "; this workflow declares no inputs"
                )
                raise UsageError(f"--map {name}=...: unknown input '{name}'{hint}")
        self.columns = {name: renames.get(name, name) for name in declared}
        self.required = {name for name in declared if is_required(workflow, name)}
        self.renames = dict(renames)

    def inputs_of(self, row: Row, path: Path) -> dict[str, Any]:
        """The row's inputs (extra columns ignored); a missing required one names the fix."""
        given = {
            name: row.values[column]
            for name, column in self.columns.items()
            if column in row.values
        }
        for name in sorted(self.required - given.keys()):
            column = self.columns[name]
            raise DataFileError(
                f"{path}:{row.line}: row {row.number} has no column {column!r} for the required input "
                f"'{name}'; add it, or name the column to use with --map {name}=COLUMN"
            )
        return given


def parse_map_args(pairs: list[str]) -> dict[str, str]:
    """``["topic=subject"]`` → ``{"topic": "subject"}``."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        name, separator, column = pair.partition("=")
        name, column = name.strip(), column.strip()
        if not separator or not name or not column:
            raise UsageError(
                f"--map expects INPUT=COLUMN, got {pair!r}; for example --map topic=subject"
            )
        if name in parsed:
            raise UsageError(f"--map {name}=... is given twice; map each input once")
        parsed[name] = column
    return parsed


def check_rows(path: Path, mapping: InputMapping, max_rows: int | None = None) -> DataSummary:
    """Read every row (up to ``max_rows``) and check its inputs; also hash the whole file."""
    count = 0
    for row in read_rows(path):
        if max_rows is not None and row.number > max_rows:
            break
        mapping.inputs_of(row, path)
        count = row.number
    if count == 0:
        raise DataFileError(
            f"{path}: no rows; add at least one (a JSON object per line, or CSV lines after the header)"
        )
    return DataSummary(rows=count, sha256=file_sha256(path))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = [
    "DataFileError",
    "DataSummary",
    "InputMapping",
    "Row",
    "check_rows",
    "data_format",
    "file_sha256",
    "parse_map_args",
    "read_rows",
]
