"""Reading and writing datasets: JSONL, CSV/TSV, Parquet and folders of one-example-per-line .txt files.

Every reader turns its file into the same stream of ``(path, line, record)`` triples, and one
function (:func:`_build`) turns that stream into a :class:`Dataset`, so column mapping, label
normalisation and the error messages are the same whatever the format. Errors name the file, the
line (the row number for Parquet) and what is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from confidently.data.dataset import Dataset, GivenColumns, json_value
from confidently.errors import DataError
from confidently.files import atomic_path, atomic_write_text

Row = tuple[Path, int, dict[str, Any]]

SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
            ".txt": "txt"}
_TRUE, _FALSE = "true", "false"
_INTEGER = re.compile(r"[+-]?\d+(?:\.0*)?")


def normalize_label(value: Any, labels: Sequence[str] | None, *, path: str | Path | None = None,
                    line: int | None = None) -> str:
    """Map a raw label value to one of the task's label names.

    Whitespace and case are ignored; a number, or ``true``/``false`` for two labels, is read as an
    index into ``labels`` (so with the default ``("negative", "positive")``, ``1`` and ``true`` mean
    positive); an abbreviation of three or more letters that starts exactly one label name
    (``pos``, ``neg``) means that label.

    Parameters
    ----------
    value : str, int, float or bool
        The label as read from the file.
    labels : sequence of str or None
        The task's label names. None keeps every label as given (whitespace-collapsed, lower case).
    path, line : optional
        Where the value was read, for the error message.

    Returns
    -------
    str
        The canonical label name.

    Raises
    ------
    DataError
        For an empty label, a value of another type, or a label that maps to none of ``labels``.

    Examples
    --------
    >>> [normalize_label(v, ("negative", "positive")) for v in (" Positive", "neg", 0, "TRUE")]
    ['positive', 'negative', 'negative', 'positive']
    """
    if isinstance(value, bool):  # before int: bool is an int subclass
        raw = _TRUE if value else _FALSE
    elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        raw = str(int(value))
    elif isinstance(value, str):
        raw = " ".join(value.split()).casefold()
    else:
        raise DataError(f"label {value!r} is a {type(value).__name__}; expected text or a number", path=path,
                        line=line)
    if not raw:
        raise DataError("empty label", path=path, line=line)
    if labels is None:
        return raw
    canonical = {name.casefold(): name for name in labels}
    if raw in canonical:
        return canonical[raw]
    if _INTEGER.fullmatch(raw) and 0 <= int(float(raw)) < len(labels):
        return labels[int(float(raw))]
    if raw in (_TRUE, _FALSE) and len(labels) == 2:
        return labels[1] if raw == _TRUE else labels[0]
    starting = [name for key, name in canonical.items() if len(raw) >= 3 and key.startswith(raw)]
    if len(starting) == 1:
        return starting[0]
    indices = "/".join(str(i) for i in range(len(labels))) + (", true/false" if len(labels) == 2 else "")
    raise DataError(f"unknown label {value!r}; allowed: {', '.join(labels)} (or {indices}, or an abbreviation "
                    f"such as {labels[0][:3]!r})", path=path, line=line)


def load_dataset(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                 labels: Sequence[str] | None = ("negative", "positive"), require_labels: bool = False) -> Dataset:
    """Load a dataset from a data file or a folder of ``.txt`` files.

    Parameters
    ----------
    path : str or Path
        ``.jsonl``/``.ndjson`` (one JSON object a line), ``.csv``, ``.tsv``, ``.parquet``; or a folder of
        ``{category}_{label}.txt`` files (or one such file) with one example a line, where the part
        of the name after the last ``_`` is the label and the part before it the category.
    text_column, label_column : str
        Which columns hold the text and the label; ignored for ``.txt`` files.
    labels : sequence of str or None
        The task's label names; raw labels are mapped onto them (see :func:`normalize_label`).
        None keeps labels as given.
    require_labels : bool
        Raise when the file has no label column instead of returning an unlabelled dataset.

    Returns
    -------
    Dataset
        Labels are None when the file has no label column. Every other column is kept in
        ``columns``.

    Raises
    ------
    DataError
        Naming the file, the line and the problem: malformed JSON, a missing column (with the
        columns present), an unknown or empty label, empty text, bytes that are not UTF-8.

    Examples
    --------
    >>> ds = load_dataset("reviews.csv", text_column="review", label_column="stars_label")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", path=path)
    if path.is_dir():
        return _build(_read_txt_folder(path, labels), path, "text", "label", labels, require_labels,
                      columns=["text", "label", "category"])
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unknown file type {path.suffix!r}; use one of {', '.join(sorted(SUFFIXES))} "
                        "or a folder of .txt files", path=path)
    if kind == "txt":
        return _build(_read_txt_file(path, labels), path, "text", "label", labels, require_labels,
                      columns=["text", "label", "category"])
    if kind == "jsonl":
        rows = list(_read_jsonl(path))
        columns = list(dict.fromkeys(key for _, _, record in rows for key in record))
    elif kind == "parquet":
        columns, rows = _read_parquet(path)
    else:
        columns, rows = _read_csv(path, delimiter="\t" if kind == "tsv" else ",")
        _check_header(columns, path)
    return _build(rows, path, text_column, label_column, labels, require_labels, columns=columns,
                  per_row_keys=kind == "jsonl")


def _build(rows: Iterable[Row], source: Path, text_column: str, label_column: str,
           labels: Sequence[str] | None, require_labels: bool, *, columns: list[str],
           per_row_keys: bool = False) -> Dataset:
    """Check every row and assemble the Dataset (one code path for all formats)."""
    rows = list(rows)
    if not rows:
        raise DataError("no rows: the file is empty", path=source)
    present = ", ".join(columns) or "none"
    # Tabular formats have one header: report a missing column once, at the file, not per row.
    # (JSONL rows each have their own keys and are checked row by row below, with the line.)
    if text_column not in columns and not per_row_keys:
        raise DataError(f"no text column {text_column!r} (columns present: {present}); "
                        "choose one with text_column / --text-column", path=source)
    has_labels = label_column in columns
    if require_labels and not has_labels:
        raise DataError(f"no label column {label_column!r} (columns present: {present}); "
                        "choose one with label_column / --label-column", path=source)
    extras = [name for name in columns if name not in (text_column, label_column)]
    # A file's own "text"/"label" column that is not the one mapped is kept, renamed, as an extra.
    renamed = {name: f"{name}_original" for name in extras if name in ("text", "label")}
    clashes = [new for new in renamed.values() if new in columns]
    if clashes:
        raise DataError(f"column {clashes[0]!r} would clash with a renamed text/label column; rename it",
                        path=source)
    texts: list[str] = []
    found: list[str] = []
    given_labels: list = []
    kept: dict[str, list] = {renamed.get(name, name): [] for name in extras}
    for path, line, record in rows:
        if per_row_keys and text_column not in record:
            raise DataError(f"no text column {text_column!r} (fields present: {', '.join(record) or 'none'}); "
                            "choose one with text_column / --text-column", path=path, line=line)
        texts.append(_check_text(record.get(text_column), path, line))
        if has_labels:
            value = record.get(label_column)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise DataError(f"no label in column {label_column!r}; every row of a labelled file needs one",
                                path=path, line=line)
            found.append(normalize_label(value, labels, path=path, line=line))
            given_labels.append(value)
        for name in extras:
            kept[renamed.get(name, name)].append(record.get(name))
    given = GivenColumns(tuple(columns), text_column, label_column if has_labels else None,
                         tuple(given_labels) if has_labels else None)
    return Dataset(tuple(texts), tuple(found) if has_labels else None, kept, source=str(source), given=given)


def _check_text(value: Any, path: Path, line: int) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError("empty text", path=path, line=line)
    if not isinstance(value, str):
        raise DataError(f"text is a {type(value).__name__} ({value!r}), not a string", path=path, line=line)
    return value


def _check_header(columns: list[str], path: Path) -> None:
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise DataError(f"column {name!r} appears twice in the header", path=path, line=1)
        seen.add(name)


def _read_text(path: Path) -> str:
    """The file decoded as UTF-8 (a byte-order mark is dropped); bad bytes are reported by line."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        bad = data[error.start:error.end]
        raise DataError(f"bytes {bad!r} are not UTF-8; re-save the file as UTF-8", path=path, line=line) from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered physical lines; a final newline does not start an extra line."""
    text = _read_text(path)
    # split("\n"), not splitlines(): JSON strings may legally contain U+2028 and friends.
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    for number, content in enumerate(parts, start=1):
        yield number, content.removesuffix("\r")


def _read_jsonl(path: Path) -> Iterator[Row]:
    for number, content in _lines(path):
        if not content.strip():
            continue  # blank lines between records are common and harmless in JSONL
        try:
            record = json.loads(content)
        except json.JSONDecodeError as error:
            # json's messages may end in "at" ("Unterminated string starting at"): one "at" before the column
            raise DataError(f"malformed JSON ({error.msg.removesuffix(' at')} at column {error.colno})",
                            path=path, line=number) from None
        except ValueError as error:  # an integer of more than 4300 digits
            raise DataError(f"malformed JSON ({error})", path=path, line=number) from None
        except RecursionError:
            raise DataError("malformed JSON (nested too deeply to read)", path=path, line=number) from None
        if not isinstance(record, dict):
            raise DataError(f"expected a JSON object per line, got {type(record).__name__}", path=path, line=number)
        if "\\u" in content:
            _check_unicode(record, path, number)
        yield path, number, record


def _check_unicode(record: dict[str, Any], path: Path, line: int) -> None:
    """A ``\\ud800``-style escape gives a lone surrogate, which no UTF-8 output can hold: refuse it here."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        bad = error.object[error.start:error.end].encode("unicode_escape").decode("ascii")
        raise DataError(f"the JSON escape {bad} is a lone surrogate, not a character; write the character or a "
                        "valid surrogate pair", path=path, line=line) from None


def _read_csv(path: Path, *, delimiter: str) -> tuple[list[str], list[Row]]:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError("the file is empty; expected a header row", path=path)
        header = [name.strip() for name in header]
        rows: list[Row] = []
        end = reader.line_num
        for fields in reader:
            start, end = end + 1, reader.line_num  # a quoted field may span lines: report the first
            if not fields:
                continue
            if len(fields) != len(header):
                raise DataError(f"row has {len(fields)} fields but the header has {len(header)}",
                                path=path, line=start)
            # An empty cell in an extra column means "no value", as a CSV cannot say None otherwise.
            rows.append((path, start, {name: (value if value != "" else None) for name, value in zip(header, fields)}))
    except csv.Error as error:
        raise DataError(f"malformed CSV ({error})", path=path, line=reader.line_num) from None
    return header, rows


def _read_parquet(path: Path) -> tuple[list[str], list[Row]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise DataError(f"cannot read as Parquet ({error})", path=path) from None
    # Row numbers count from 1 like lines, so "path:3:" means the third row.
    return table.column_names, [(path, i, record) for i, record in enumerate(table.to_pylist(), start=1)]


def _split_name(path: Path, labels: Sequence[str] | None) -> tuple[str | None, str]:
    """(category, label) from ``{category}_{label}.txt``; a name without ``_`` is the label alone."""
    category, _, raw = path.stem.rpartition("_")
    try:
        label = normalize_label(raw, labels)
    except DataError as error:
        raise DataError(f"the file name gives label {raw!r}, which is not one of the task's labels "
                        f"({', '.join(labels or ())}); name files {{category}}_{{label}}.txt", path=path) from error
    return category or None, label


def _read_txt_file(path: Path, labels: Sequence[str] | None) -> Iterator[Row]:
    category, label = _split_name(path, labels)
    for number, content in _lines(path):
        yield path, number, {"text": content, "label": label, "category": category}


def _read_txt_folder(folder: Path, labels: Sequence[str] | None) -> Iterator[Row]:
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError("the folder has no .txt files; expected {category}_{label}.txt, one example a line",
                        path=folder)
    for path in files:
        yield from _read_txt_file(path, labels)


def save_dataset(dataset: Dataset, path: str | Path) -> None:
    """Write a dataset to ``.jsonl``, ``.csv``, ``.tsv`` or ``.parquet`` (chosen by suffix), atomically.

    Columns are ``text``, ``label`` (when labelled), then the extras; :func:`load_dataset` reads the
    file back to an equal dataset (CSV keeps every value as text, and None as an empty cell).

    Raises
    ------
    DataError
        For an unsupported suffix.
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind == "jsonl":
        lines = (json.dumps(record, ensure_ascii=False, default=json_value) for record in dataset.to_records())
        atomic_write_text(path, "".join(line + "\n" for line in lines))
    elif kind in ("csv", "tsv"):
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter="\t" if kind == "tsv" else ",", lineterminator="\n")
        writer.writerow(["text"] + (["label"] if dataset.labels is not None else []) + list(dataset.columns))
        writer.writerows([["" if v is None else v for v in record.values()] for record in dataset.to_records()])
        atomic_write_text(path, buffer.getvalue())
    elif kind == "parquet":
        with atomic_path(path) as tmp:
            dataset.to_frame().to_parquet(tmp, index=False)
    else:
        raise DataError(f"cannot save as {path.suffix!r}; use .jsonl, .csv, .tsv or .parquet", path=path)
