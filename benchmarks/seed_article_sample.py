"""A class-balanced sample of the original write-up's 10,000-example set, as one JSON Lines file for boost.py.

The set (``../shared/datasets/seed-article/``, one example per line, label and strength from the file name)
holds 8,801 unique texts; duplicates are dropped before sampling so no text can sit on both sides of a
split. The sample keeps each row's ``strength`` (strong, medium, weak, neutral) for per-group analysis.

    python benchmarks/seed_article_sample.py --source ../shared/datasets/seed-article --rows 2000 \\
        --out /tmp/seed/seed2000.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

STRENGTHS = ("strong", "medium", "weak", "neutral")
LABELS = ("positive", "negative")


def unique_rows(source: Path) -> list[tuple[str, str, str]]:
    """(text, label, strength) for every distinct text, in file order; a text under both labels is dropped."""
    first: dict[str, tuple[str, str]] = {}
    conflicting: set[str] = set()
    for strength in STRENGTHS:
        for label in LABELS:
            for line in (source / f"{strength}_{label}.txt").read_text(encoding="utf-8").splitlines():
                text = line.strip()
                if text and first.setdefault(text, (label, strength))[0] != label:
                    conflicting.add(text)
    return [(text, label, strength) for text, (label, strength) in first.items() if text not in conflicting]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=2000, help="rows in all, half of each label")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = unique_rows(args.source)
    random.Random(7).shuffle(rows)
    sample = [row for label in LABELS for row in [r for r in rows if r[1] == label][: args.rows // 2]]
    random.Random(8).shuffle(sample)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as file:
        for text, label, strength in sample:
            file.write(json.dumps({"text": text, "label": label, "strength": strength}) + "\n")
    print(f"{len(rows):,} unique texts; wrote {len(sample):,} rows to {args.out}")


if __name__ == "__main__":
    main()
