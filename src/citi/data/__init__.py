"""Datasets: the normalised example type, raw-format loaders, rendering, batching and mixing."""

from citi.data.datadir import resolve_data_dir
from citi.data.example import ABILITIES, GENERAL, TOOL, Example, single_turn
from citi.data.loading import available_datasets, dataset_files, get_spec, load_dataset
from citi.data.mix import mix_datasets
from citi.data.registry import DATASETS
from citi.data.render import IGNORE_INDEX, Encoded, PaddingCollator, encode, encode_all

__all__ = [
    "ABILITIES",
    "DATASETS",
    "GENERAL",
    "IGNORE_INDEX",
    "TOOL",
    "Encoded",
    "Example",
    "PaddingCollator",
    "available_datasets",
    "dataset_files",
    "encode",
    "encode_all",
    "get_spec",
    "load_dataset",
    "mix_datasets",
    "resolve_data_dir",
    "single_turn",
]
