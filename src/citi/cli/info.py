"""``citi info``: the model's components and the datasets found."""

from __future__ import annotations

import argparse
from collections import defaultdict

from rich.table import Table

from citi.cli.common import add_data_dir, add_model_options, console, load_model_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show the model's components and the datasets found",
        description="Tables of the model's linear components (by kind and by layer) "
        "and of the datasets found in the data directory.",
    )
    add_model_options(p)
    add_data_dir(p)
    p.add_argument("--no-model", action="store_true", help="only list datasets")
    p.set_defaults(func=run)


def _components_tables(loaded) -> None:
    from citi.components import KIND_ORDER, list_components

    comps = list_components(loaded.model)
    total = sum(p.numel() for p in loaded.model.parameters())
    by_kind: dict[str, list] = defaultdict(list)
    by_layer: dict[int, list] = defaultdict(list)
    for c in comps:
        by_kind[c.kind].append(c)
        by_layer[c.layer].append(c)
    t = Table(
        title=f"{loaded.name}: {len(comps)} components, "
        f"{sum(c.numel for c in comps):,} of {total:,} parameters"
    )
    for col in ("kind", "count", "shape (out x in)", "parameters"):
        t.add_column(col, justify="right" if col != "kind" else "left")
    kinds = sorted(by_kind, key=lambda k: KIND_ORDER.index(k) if k in KIND_ORDER else 99)
    for k in kinds:
        cs = by_kind[k]
        shapes = sorted({f"{c.out_features}x{c.in_features}" for c in cs})
        t.add_row(k, str(len(cs)), ", ".join(shapes), f"{sum(c.numel for c in cs):,}")
    console.print(t)
    t = Table(title="by layer")
    for col in ("layer", "count", "kinds", "parameters"):
        t.add_column(col)
    for layer, cs in sorted(by_layer.items()):
        t.add_row(
            str(layer), str(len(cs)), " ".join(c.kind for c in cs), f"{sum(c.numel for c in cs):,}"
        )
    console.print(t)


def _datasets_table(data_dir) -> None:
    from citi.data import DATASETS, dataset_files, load_dataset, resolve_data_dir
    from citi.errors import DataError

    root = resolve_data_dir(data_dir)
    t = Table(title=f"datasets in {root}")
    for col in ("name", "ability", "split", "examples", "file(s)"):
        t.add_column(col)
    for name, spec in DATASETS.items():
        try:
            files = dataset_files(name, data_dir)
            n = str(len(load_dataset(name, data_dir)))
            where = ", ".join(
                str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in files
            )
        except DataError as err:
            n, where = "missing", str(err).split(":")[0] if "malformed" in str(err) else "-"
        t.add_row(name, spec.ability, spec.split, n, where)
    console.print(t)


def run(args: argparse.Namespace) -> int:
    from citi.data import resolve_data_dir

    resolve_data_dir(args.data_dir)  # a bad --data-dir fails before the model load
    if not args.no_model:
        _components_tables(load_model_from_args(args))
    _datasets_table(args.data_dir)
    return 0
