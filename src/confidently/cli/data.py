"""``confidently data …``: generate the synthetic sentiment set and split data files without leaks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from confidently.cli.app import app, console
from confidently.files import atomic_write_json, sha256_file

data_app = typer.Typer(
    help="Make and split datasets (synthetic sentiment set; JSONL, CSV/TSV, Parquet, .txt folders; every row is "
         "checked as it is read).\n\nExample: `confidently data generate --n 10000 --seed 42 --out sentiment.jsonl`",
    no_args_is_help=False,  # no command is a usage error: one line, exit 2 (see main)
    rich_markup_mode="markdown",
)
app.add_typer(data_app, name="data")

SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same output.")]


def _parse_sizes(text: str) -> dict[str, int]:
    """``"strong=500,weak_positive=2500"`` -> ``{"strong": 500, "weak_positive": 2500}``."""
    sizes: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise typer.BadParameter(f"{part!r} is not NAME=COUNT (e.g. weak=2500 or weak_positive=2500)",
                                     param_hint="--sizes")
        sizes[key.strip()] = int(value)
    return sizes


@data_app.command("generate")
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .jsonl, .csv, .tsv or .parquet.")],
    n: Annotated[Optional[int], typer.Option("--n", min=1, help="Total examples; the original category "
                                             "sizes are scaled to it. [default: 10000]")] = None,
    seed: SeedOpt = 42,
    domain_bias: Annotated[float, typer.Option("--domain-bias", min=0.0, max=1.0, help="Share of positive "
                                               "examples set in sports and of negative ones in the workplace.")] = 0.67,
    sizes: Annotated[Optional[str], typer.Option("--sizes", help="Exact counts instead of --n, e.g. "
                                                 "'strong=500,medium=1000,weak=2500,neutral=1000' (per label) "
                                                 "or 'weak_positive=2500,…'.")] = None,
) -> None:
    """Generate the synthetic 8-category sentiment dataset (strong/medium/weak/neutral × positive/negative).

    About two-thirds of positive examples are set in sports and two-thirds of negative ones in the
    workplace; neutral sports text is labelled positive and neutral workplace text negative, so a
    model that leans on the domain is caught out. Every row has text, label, category, sentiment
    and domain; no two texts are the same.

    Example: `confidently data generate --n 10000 --seed 42 --out sentiment.jsonl`
    """
    from confidently.data import domain_bias_rate, generate_sentiment, save_dataset

    if n is not None and sizes is not None:
        raise typer.BadParameter("give --n or --sizes, not both", param_hint="--n")
    dataset = generate_sentiment(n if n is not None else 10000, seed=seed, domain_bias=domain_bias,
                                 sizes=_parse_sizes(sizes) if sizes is not None else None)
    save_dataset(dataset, out)
    console.print(_generation_table(dataset))
    rates = domain_bias_rate(dataset)
    console.print(
        f"wrote {len(dataset):,} rows to [bold]{out}[/]; positive in sports: {rates.get('positive', 0):.1%}, "
        f"negative in the workplace: {rates.get('negative', 0):.1%} (--domain-bias {domain_bias})",
        highlight=False,
    )


def _generation_table(dataset) -> Table:
    from confidently.data.generator import CATEGORIES, LABELS

    domains = ("sports", "workplace", "other")
    table = Table(title="Generated examples per category and domain")
    table.add_column("category")
    table.add_column("label")
    for domain in (*domains, "total"):
        table.add_column(domain, justify="right")
    cells: dict[tuple, int] = {}
    for key in zip(dataset.columns["category"], dataset.labels, dataset.columns["domain"]):
        cells[key] = cells.get(key, 0) + 1
    for category in CATEGORIES:
        for label in LABELS:
            counts = [cells.get((category, label, domain), 0) for domain in domains]
            table.add_row(category, label, *map(str, counts), str(sum(counts)))
    totals = [sum(v for (_, _, d), v in cells.items() if d == domain) for domain in domains]
    table.add_section()
    table.add_row("[bold]total[/]", "", *map(str, totals), f"[bold]{len(dataset)}[/]")
    return table


@data_app.command("split")
def split(
    input: Annotated[Path, typer.Argument(exists=True, help="Data file (.jsonl, .csv, .tsv, .parquet) or folder of "
                                          "{category}_{label}.txt files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for train.jsonl, calibration.jsonl, "
                                      "test.jsonl and split.json.")],
    fractions: Annotated[str, typer.Option("--fractions",
                                           help="Train, calibration and test shares.")] = "0.7,0.15,0.15",
    seed: SeedOpt = 42,
    text_column: Annotated[str, typer.Option("--text-column", help="Column holding the text.")] = "text",
    label_column: Annotated[str, typer.Option("--label-column", help="Column holding the label.")] = "label",
    labels: Annotated[str, typer.Option(
        "--labels", help="The task's label names, comma-separated; raw labels (1/0, pos/neg, true/false) are "
        "mapped onto them.")] = "negative,positive",
) -> None:
    """Split a dataset into train / calibration / test files without leaks.

    Duplicate texts (compared case-folded, whitespace-collapsed) are removed *before*
    splitting, so no text lands in two splits (checked afterwards); splits are stratified by label
    and by category when there is one. Writes a split.json manifest with the fractions, seed,
    counts and the sha256 of every file.

    Example: `confidently data split sentiment.jsonl --out splits/ --fractions 0.7,0.15,0.15 --seed 42`
    """
    from confidently.data import load_dataset, save_dataset, split_dataset
    from confidently.data.splits import parse_fractions


    label_names = [name.strip() for name in labels.split(",") if name.strip()]
    if len(label_names) < 2:
        raise typer.BadParameter("give at least two label names, e.g. negative,positive", param_hint="--labels")
    dataset = load_dataset(input, text_column=text_column, label_column=label_column, labels=label_names)
    splits = split_dataset(dataset, fractions=parse_fractions(fractions), seed=seed)
    outputs = {}
    for name, part in splits.items():
        path = out / f"{name}.jsonl"
        save_dataset(part, path)
        outputs[name] = {"path": path.name, "rows": len(part), "sha256": sha256_file(path)}
    report = splits.report
    atomic_write_json(out / "split.json", {
        "input": {"path": str(input), "rows": report.n_input, "sha256": _sha256_input(input),
                  "content_sha256": dataset.sha256()},
        **report.to_dict(),
        "outputs": outputs,
    })
    console.print(_count_table("Rows per split and label", report.counts))
    if report.category_counts is not None:
        console.print(_count_table("Rows per split and category", report.category_counts))
    console.print(
        f"{report.n_input:,} rows, {report.duplicates_dropped:,} duplicates dropped "
        f"({report.conflicting_labels} with conflicting labels), {report.n_unique:,} split; "
        f"texts shared between splits: {report.shared_texts}. Wrote {out}/",
        highlight=False,
    )


def _count_table(title: str, counts: dict[str, dict[str, int]]) -> Table:
    keys = sorted({key for per_split in counts.values() for key in per_split})
    table = Table(title=title)
    table.add_column("split")
    for key in (*keys, "total"):
        table.add_column(key, justify="right")
    for name, per_split in counts.items():
        table.add_row(name, *(str(per_split.get(key, 0)) for key in keys), str(sum(per_split.values())))
    column_totals = [sum(per_split.get(key, 0) for per_split in counts.values()) for key in keys]
    table.add_section()
    table.add_row("[bold]total[/]", *map(str, column_totals), f"[bold]{sum(column_totals)}[/]")
    return table


def _sha256_input(path: Path) -> str:
    """sha256 of the input file, or for a .txt folder of its ``name sha256`` listing."""
    import hashlib

    if not path.is_dir():
        return sha256_file(path)
    listing = "".join(f"{p.name} {sha256_file(p)}\n" for p in sorted(path.glob("*.txt")))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()

