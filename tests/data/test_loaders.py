"""Loading and saving: every format, column mapping, label normalisation and each bad-input error."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from confidently.data import Dataset, load_dataset, normalize_label, save_dataset
from confidently.errors import DataError

BINARY = ("negative", "positive")


def write(path, content: str | bytes):
    """Write a test input file (bytes as given, text as UTF-8)."""
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def error_of(path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    return str(info.value)


# --- label normalisation -------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("positive", "positive"), (" Positive ", "positive"), ("NEGATIVE", "negative"), ("pos", "positive"),
    ("Neg", "negative"), (1, "positive"), (0, "negative"), ("1", "positive"), ("0", "negative"),
    (1.0, "positive"), ("0.0", "negative"), (True, "positive"), (False, "negative"), ("true", "positive"),
    (" FALSE", "negative"),
])
def test_labels_are_normalised(raw, expected):
    assert normalize_label(raw, BINARY) == expected


def test_label_normalisation_with_other_names():
    assert normalize_label("Spam ", ("ham", "spam")) == "spam"
    assert normalize_label(1, ("ham", "spam")) == "spam"
    assert normalize_label(2, ("a", "b", "c")) == "c"
    assert normalize_label(" Some  Label ", None) == "some label"


@pytest.mark.parametrize("raw", ["maybe", "2", "po", "", "   ", [1]])
def test_unknown_labels_are_refused(raw):
    with pytest.raises(DataError):
        normalize_label(raw, BINARY)


# --- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv", ".parquet"])
def test_save_then_load_round_trips(tmp_path, suffix):
    original = Dataset(
        ("Great match, \"truly\" great!", "A line\nwith a newline, and commas", "Ünïcödé text ✓"),
        ("positive", "negative", "positive"),
        {"category": ("strong", "weak", "neutral"), "domain": ("sports", None, "other")},
    )
    path = tmp_path / f"data{suffix}"
    save_dataset(original, path)
    loaded = load_dataset(path)
    assert loaded.texts == original.texts
    assert loaded.labels == original.labels
    assert dict(loaded.columns) == dict(original.columns)
    assert loaded.source == str(path)
    assert loaded.sha256() == original.sha256()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # atomic write left no temporary file


def test_unlabelled_round_trip(tmp_path):
    original = Dataset(("one", "two"), None)
    save_dataset(original, tmp_path / "u.jsonl")
    loaded = load_dataset(tmp_path / "u.jsonl")
    assert loaded.labels is None and loaded.texts == ("one", "two")


def test_save_refuses_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="cannot save as '.xlsx'"):
        save_dataset(Dataset(("a",), None), tmp_path / "out.xlsx")


# --- column mapping, optional labels, extras -----------------------------------------------------

def test_column_mapping_and_extras_kept(tmp_path):
    path = write(tmp_path / "reviews.csv", "id,review,stars,score\n7,Loved it,pos,0.9\n8,Hated it,NEG,0.1\n")
    ds = load_dataset(path, text_column="review", label_column="stars")
    assert ds.texts == ("Loved it", "Hated it")
    assert ds.labels == ("positive", "negative")
    assert dict(ds.columns) == {"id": ("7", "8"), "score": ("0.9", "0.1")}


def test_unlabelled_file_loads_with_labels_none(tmp_path):
    path = write(tmp_path / "u.jsonl", '{"text": "one", "extra": 1}\n\n{"text": "two", "extra": 2}\n')
    ds = load_dataset(path)
    assert ds.labels is None
    assert ds.columns["extra"] == (1, 2)
    message = error_of(path, require_labels=True)
    assert "no label column 'label'" in message and "columns present: text, extra" in message


def test_jsonl_numeric_and_boolean_labels(tmp_path):
    path = write(tmp_path / "n.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": false}\n')
    assert load_dataset(path).labels == ("positive", "negative")


def test_parquet_with_integer_labels(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"sentence": ["x", "y"], "label": [0, 1], "n": [3, 4]}).to_parquet(path)
    ds = load_dataset(path, text_column="sentence")
    assert ds.labels == ("negative", "positive")
    assert ds.columns["n"] == (3, 4)


# --- bad input: each names the file, the line and the problem ------------------------------------

@pytest.mark.parametrize("name, content, line, fragments", [
    ("bad.jsonl", '{"text": "ok", "label": "positive"}\n{"text": "broken", \n', 2, ["malformed JSON"]),
    ("bad.jsonl", '{"text": "ok"}\n["text", "list"]\n', 2, ["expected a JSON object per line, got list"]),
    # a missing column is a property of the whole header, so no line
    ("bad.csv", "review,label\nnice,positive\n", None, ["no text column 'text'", "columns present: review, label"]),
    ("bad.jsonl", '{"text": "a", "label": 1}\n{"txt": "b", "label": 0}\n', 2,
     ["no text column 'text'", "fields present: txt, label"]),
    ("bad.csv", "text,label\nfine,positive\nhmm,maybe\n", 3, ["unknown label 'maybe'", "allowed: negative, positive"]),
    ("bad.jsonl", '{"text": "a", "label": "positive"}\n{"text": "b"}\n', 2, ["no label in column 'label'"]),
    ("bad.jsonl", '{"text": 42}\n', 1, ["text is a int"]),
    ("bad.csv", 'text,label\n"multi\nline",1\ntoo,many,fields\n', 4, ["row has 3 fields but the header has 2"]),
    ("bad.tsv", "text\ttext\na\tb\n", 1, ["column 'text' appears twice"]),
])
def test_bad_input_names_file_line_and_problem(tmp_path, name, content, line, fragments):
    path = write(tmp_path / name, content)
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: "), message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("name, content, line", [
    ("empty.jsonl", '{"text": "a"}\n{"text": "  "}\n', 2),
    ("empty.csv", "text,label\na,1\n,0\n", 3),
    ("null.jsonl", '{"text": null}\n', 1),
])
def test_empty_text(tmp_path, name, content, line):
    path = write(tmp_path / name, content)
    assert error_of(path) == f"{path}:{line}: empty text"


def test_empty_text_in_parquet_names_the_row(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"text": ["fine", None], "label": ["positive", "negative"]}).to_parquet(path)
    assert error_of(path) == f"{path}:2: empty text"


@pytest.mark.parametrize("name", ["latin1.csv", "latin1.jsonl"])
def test_non_utf8_bytes_give_the_line(tmp_path, name):
    head = b"text,label\n" if name.endswith(".csv") else b""
    row = (lambda t: b"%s,positive\n" % t) if name.endswith(".csv") else (lambda t: b'{"text": "%s"}\n' % t)
    path = write(tmp_path / name, head + row(b"fine") + row(b"caf\xe9") + row(b"more"))
    message = error_of(path)
    line = 3 if head else 2
    assert message.startswith(f"{path}:{line}: ") and "not UTF-8" in message


def test_utf8_bom_is_accepted(tmp_path):
    path = write(tmp_path / "bom.csv", b"\xef\xbb\xbftext,label\nhi,1\n")
    assert load_dataset(path).texts == ("hi",)


def test_missing_file_empty_file_and_unknown_type(tmp_path):
    assert error_of(tmp_path / "nope.jsonl").endswith("no such file or folder")
    assert "no rows" in error_of(write(tmp_path / "e.jsonl", ""))
    assert "the file is empty" in error_of(write(tmp_path / "e.csv", ""))
    assert "unknown file type '.xlsx'" in error_of(write(tmp_path / "x.xlsx", "x"))
    assert "cannot read as Parquet" in error_of(write(tmp_path / "x.parquet", "not parquet"))


# --- folders of .txt files -----------------------------------------------------------------------

def test_txt_folder_takes_label_and_category_from_names(tmp_path):
    write(tmp_path / "weak_positive.txt", "Slightly better.\nA touch brighter.\n")
    write(tmp_path / "neutral_negative.txt", "The meeting is at noon.")  # no final newline
    write(tmp_path / "very_strong_Negative.txt", "Awful!\r\n")
    write(tmp_path / "notes.md", "ignored")
    ds = load_dataset(tmp_path)
    assert ds.texts == ("The meeting is at noon.", "Awful!", "Slightly better.", "A touch brighter.")
    assert ds.labels == ("negative", "negative", "positive", "positive")
    assert ds.columns["category"] == ("neutral", "very_strong", "weak", "weak")
    one = load_dataset(tmp_path / "weak_positive.txt")
    assert one.labels == ("positive", "positive")


def test_txt_folder_errors(tmp_path):
    write(tmp_path / "weak_maybe.txt", "text\n")
    message = error_of(tmp_path)
    assert str(tmp_path / "weak_maybe.txt") in message and "gives label 'maybe'" in message
    (tmp_path / "weak_maybe.txt").unlink()
    assert "no .txt files" in error_of(tmp_path)
    write(tmp_path / "weak_positive.txt", "fine\n\nmore\n")
    assert error_of(tmp_path) == f"{tmp_path / 'weak_positive.txt'}:2: empty text"
    write(tmp_path / "weak_positive.txt", b"fine\nbad \xff byte\n")
    assert error_of(tmp_path).startswith(f"{tmp_path / 'weak_positive.txt'}:2: ")


def test_jsonl_written_one_object_per_line(tmp_path):
    save_dataset(Dataset(("a\nb",), ("positive",)), tmp_path / "x.jsonl")
    lines = (tmp_path / "x.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"text": "a\nb", "label": "positive"}]
