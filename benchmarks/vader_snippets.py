"""Real, human-rated snippets from the VADER paper's data, as one JSON Lines file for boost.py.

The ``vaderSentiment`` source distribution on PyPI (3.3.2, MIT) carries the ICWSM-2014 paper's rated sets
in ``additional_resources/hutto_ICWSM_2014.tar.gz``: 10,605 movie-review snippets (Pang & Lee's Rotten
Tomatoes sentences), 3,708 Amazon review snippets, 5,190 New York Times editorial snippets and 4,200 tweets,
each rated by about 20 people from -4 (extremely negative) to +4 (extremely positive). A row is labelled by
the sign of its mean rating; rows rated exactly 0, or closer to 0 than ``--margin``, are dropped, and so is
any text that appears twice. The sample is class-balanced (half of each label, seeded), and keeps each
row's ``rating`` for per-group analysis. Nothing is copied into the project: the archive is fetched from the
package index (or read from ``--sdist``) when the script runs.

    python benchmarks/vader_snippets.py --set movie --rows 2000 --out /tmp/vader/movie2000.jsonl
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SETS = {"movie": "movieReviewSnippets", "amazon": "amazonReviewSnippets", "nyt": "nytEditorialSnippets",
        "tweets": "tweets"}
SDIST = "vaderSentiment==3.3.2"


def download_sdist(folder: Path) -> Path:
    """The package's source distribution, fetched from the configured package index."""
    subprocess.run([sys.executable, "-m", "pip", "download", SDIST, "--no-deps", "--no-binary", ":all:",
                    "--quiet", "--dest", str(folder)], check=True)
    return next(folder.glob("vaderSentiment-*.tar.gz"))


def ground_truth(sdist: Path, name: str) -> list[tuple[str, float]]:
    """(text, mean rating) for every line of ``<name>_GroundTruth.txt`` inside the nested archive."""
    with tarfile.open(sdist) as outer:
        member = next(m for m in outer.getmembers() if m.name.endswith("additional_resources/hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(member).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        member = next(m for m in inner.getmembers() if m.name.endswith(f"{name}_GroundTruth.txt"))
        lines = inner.extractfile(member).read().decode("utf-8", errors="replace").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        parts = line.split("\t")
        if len(parts) < 3:
            raise SystemExit(f"{member.name} line {number}: expected 'id<TAB>rating<TAB>text', got {line[:80]!r}")
        rows.append(("\t".join(parts[2:]).strip(), float(parts[1])))
    return rows


def labelled(rows: list[tuple[str, float]], margin: float) -> list[tuple[str, str, float]]:
    """(text, label, rating) for each distinct text whose rating is at least ``margin`` away from 0."""
    counts: dict[str, int] = {}
    for text, _ in rows:
        counts[text] = counts.get(text, 0) + 1
    return [(text, "positive" if rating > 0 else "negative", rating) for text, rating in rows
            if text and counts[text] == 1 and rating != 0 and abs(rating) >= margin]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="movie")
    parser.add_argument("--rows", type=int, default=2000, help="rows in all, half of each label")
    parser.add_argument("--margin", type=float, default=0.0, help="drop rows whose |mean rating| is below this")
    parser.add_argument("--sdist", type=Path, default=None, help="a downloaded vaderSentiment-3.3.2.tar.gz")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.sdist is not None and not args.sdist.is_file():
        parser.error(f"--sdist {args.sdist}: no such file")
    with tempfile.TemporaryDirectory() as folder:
        sdist = args.sdist or download_sdist(Path(folder))
        rows = labelled(ground_truth(sdist, SETS[args.set]), args.margin)
    random.Random(7).shuffle(rows)
    by_label = {label: [row for row in rows if row[1] == label] for label in ("positive", "negative")}
    half = args.rows // 2
    if any(len(group) < half for group in by_label.values()):
        raise SystemExit(f"--rows {args.rows}: the {args.set} set has only "
                         + ", ".join(f"{len(g):,} {label}" for label, g in by_label.items()) + " rows")
    sample = [row for group in by_label.values() for row in group[:half]]
    random.Random(8).shuffle(sample)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as file:
        for text, label, rating in sample:
            file.write(json.dumps({"text": text, "label": label, "rating": rating}) + "\n")
    print(f"{args.set}: {len(rows):,} labelled distinct texts "
          f"({len(by_label['positive']):,} positive, {len(by_label['negative']):,} negative); "
          f"wrote {len(sample):,} rows to {args.out}")


if __name__ == "__main__":
    main()
