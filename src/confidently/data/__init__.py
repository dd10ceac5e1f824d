"""Datasets: loading, saving, the synthetic sentiment generator, and leak-free splits.

>>> from confidently.data import generate_sentiment, split_dataset
>>> splits = split_dataset(generate_sentiment(1000, seed=0))
>>> len(splits.train), len(splits.calibration), len(splits.test)
(700, 150, 150)
"""

from confidently.data.dataset import Dataset, normalize_text
from confidently.data.generator import DEFAULT_SIZES, domain_bias_rate, generate_sentiment
from confidently.data.loaders import load_dataset, normalize_label, save_dataset
from confidently.data.splits import SplitReport, Splits, split_dataset, stratified_sample

__all__ = [
    "DEFAULT_SIZES",
    "Dataset",
    "SplitReport",
    "Splits",
    "domain_bias_rate",
    "generate_sentiment",
    "load_dataset",
    "normalize_label",
    "normalize_text",
    "save_dataset",
    "split_dataset",
    "stratified_sample",
]
