"""``citi reproduce``: importance → selection → training → evaluation → analyses → report.

Every step records its completion and duration in ``OUT/steps.json``; a rerun skips finished
steps, and the steps themselves resume inside (importance per ability, training from its last
checkpoint, evaluation per task). A rerun under other settings than the ``preset.yaml`` saved in
OUT is refused, naming what changed, unless ``force`` (then the finished steps are kept).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from citi.config import changed_settings, save_config
from citi.console import console
from citi.errors import CitiError
from citi.evaluation.config import EvalConfig
from citi.io import read_json, write_json_atomic
from citi.reproduce.preset import ReproduceConfig


class Pipeline:
    def __init__(self, config: ReproduceConfig, out_dir: str | Path, force: bool = False):
        self.config = config
        self.out = Path(out_dir)
        self.force = force  # continue a reproduction made under other settings
        self.steps_file = self.out / "steps.json"
        self.steps = read_json(self.steps_file) if self.steps_file.is_file() else {}
        self.ran: list[str] = []  # steps executed (not skipped) in this invocation

    def plan(self) -> list[tuple[str, Callable[[], None]]]:
        cfg = self.config
        steps: list[tuple[str, Callable[[], None]]] = [("importance", self.importance)]
        if "jaccard" in cfg.analyses:
            steps.append(("analysis-jaccard", self.jaccard))
        if cfg.sweep:
            steps.append(("sweep-alpha", self.sweep))
        if cfg.tune:
            steps.append(("tune-lr", self.tune))
        runs = [r.name for r in cfg.runs()]
        steps += [(f"train-{r}", partial(self.train, r)) for r in runs]
        steps += [(f"eval-{r}", partial(self.evaluate, r)) for r in ["base", *runs]]
        if cfg.snapshot_eval and cfg.snapshot_eval.tasks:
            steps.append(("eval-snapshots-base", partial(self.evaluate_snapshots, "base")))
            steps += [(f"eval-snapshots-{r}", partial(self.evaluate_snapshots, r)) for r in runs]
        if any(t.startswith("drift-") for t in cfg.eval.tasks):
            steps.append(("analysis-tradeoff", self.tradeoff))
        if "router" in cfg.analyses and self._router_method() is not None:
            steps.append(("analysis-router", self.router))
        if "icc" in cfg.analyses:
            if cfg.icc.reference_dataset:
                steps.append(("train-ft-reference", self.train_icc_reference))
            steps.append(("analysis-icc", self.icc))
        if "replace" in cfg.analyses:
            steps.append(("analysis-replace", self.replace))
        if any(t.startswith("drift-") for t in cfg.eval.tasks):
            # Last before the report: its verdicts read the router, Jaccard and ICC results.
            steps.remove(("analysis-tradeoff", self.tradeoff))
            steps.append(("analysis-tradeoff", self.tradeoff))
        steps.append(("report", self.report))
        return steps

    def run(self) -> Path:
        shown = changed_settings(self.out / "preset.yaml", self.config)
        if shown and not self.force:
            raise CitiError(
                f"--out: {self.out} holds a reproduction made with other settings ({shown}); "
                f"its finished steps would be reused: choose another --out, or add --force to "
                f"keep them anyway"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.out / "preset.yaml")
        plan = self.plan()
        for i, (name, fn) in enumerate(plan, start=1):
            if self.steps.get(name, {}).get("done"):
                console.print(f"[{i}/{len(plan)}] {name}: done earlier, skipped")
                continue
            console.print(f"[{i}/{len(plan)}] {name} ...")
            start = time.perf_counter()
            fn()
            self.steps[name] = {"done": True, "seconds": round(time.perf_counter() - start, 1)}
            self.ran.append(name)
            write_json_atomic(self.steps_file, self.steps)
        return self.out / "report.md"

    # -- steps -------------------------------------------------------------------------------
    def importance(self) -> None:
        from citi.importance.run import run_importance

        run_importance(self.config.importance_config, self.out / "importance")

    def jaccard(self) -> None:
        from citi.analysis.jaccard import run_jaccard

        run_jaccard(read_json(self.out / "importance" / "importance.json"), self.out / "analysis")

    def _train_values(self, name: str, seed: int, tuned: bool = True) -> dict:
        """TrainConfig fields of one run (see ReproduceConfig.train_values), with the learning
        rates the tuning chose for the method (``tuned``)."""
        from citi.reproduce.tuning import chosen_lr

        swept = None
        if (self.out / "analysis" / "sweep.json").is_file():
            swept = read_json(self.out / "analysis" / "sweep.json")["chosen"]
        selection = str(self.out / "importance" / "selection.json")
        values = self.config.train_values(name, selection, seed, swept)
        lr = chosen_lr(self.out, name) if tuned else None
        return values | {"lr": lr} if lr else values

    def _run_trainer(self, run: str, values: dict, where: str, run_dir: Path | None = None) -> None:
        from citi.config import config_from_dict
        from citi.train.config import TrainConfig
        from citi.train.loop import Trainer

        run_dir = run_dir or self.out / "runs" / run
        config = config_from_dict(TrainConfig, values, where)
        resume = (run_dir / "checkpoint").is_dir() or (run_dir / "summary.json").is_file()
        Trainer(config, run_dir).run(resume=resume, force=self.force)

    def train(self, name: str) -> None:
        run = self.config.run(name)
        self._run_trainer(name, self._train_values(run.method, run.seed), f"train ({name})")

    def sweep(self) -> None:
        """Train one short run per MOLoRA alpha and keep the one with the lowest loss on the
        held-out tool validation split (train.validation): evidence from training data only."""
        sw = self.config.sweep
        if sw is None:
            raise CitiError("sweep: the preset has no sweep section")
        method = sw.method
        candidates = []
        for alpha in sw.alpha:
            name = f"alpha-{alpha:g}"
            values = self._train_values(method, self.config.seeds[0]) | {
                **sw.train,
                "method": method,
                "snapshots": [],
                "eval_datasets": [],
            }
            values["molora"] = {**values.get("molora", {}), "alpha": alpha}
            run_dir = self.out / "sweep" / name
            self._run_trainer(name, values, f"sweep ({name})", run_dir)
            log = read_json(run_dir / "summary.json")["eval"]
            candidates.append(
                {
                    "alpha": alpha,
                    "validation_loss_before": log[0]["loss"]["tool-validation"],
                    "validation_loss": log[-1]["loss"]["tool-validation"],
                }
            )
        finite = [c for c in candidates if math.isfinite(c["validation_loss"])]
        # Ties go to the smaller alpha (listed first after a stable sort).
        chosen = min(sorted(finite, key=lambda c: c["alpha"]), key=lambda c: c["validation_loss"])
        write_json_atomic(
            self.out / "analysis" / "sweep.json",
            {
                "method": method,
                "criterion": "mean label loss on the held-out tool validation split after the "
                "last stage (lower is better)",
                "candidates": candidates,
                "chosen": chosen["alpha"],
            },
        )

    def tune(self) -> None:
        """The same learning-rate grid for every method, on the tuning seed (see tuning.py)."""
        from citi.reproduce.tuning import run_tuning

        run_tuning(self)

    def evaluate(self, run: str) -> None:
        adapter = None if run == "base" else str(self.out / "runs" / run)
        judge = self.config.judge.judge() if self.config.judge else None
        config = self.config.eval.eval_config(adapter=adapter, **self._eval_run_settings())
        _evaluate(config, self.out / "eval" / run, judge)

    def evaluate_snapshots(self, run: str) -> None:
        """The cheap snapshot tasks on each training snapshot and on the final adapter (or on
        the base model), for the trade-off figure's lines."""
        ev = self.config.snapshot_eval
        if ev is None:
            raise CitiError("snapshot_eval: the preset has no snapshot_eval section")
        settings = self._eval_run_settings() | {"batch_size": self.config.eval.batch_size}
        root = self.out / "eval-snapshots" / run
        targets: list[tuple[Path | None, float, Path]]
        if run == "base":
            targets = [(None, 0.0, root)]
        else:
            run_dir = self.out / "runs" / run
            fractions = read_json(run_dir / "summary.json").get("snapshots", {})
            targets = [(run_dir / "snapshots" / s, f, root / s) for s, f in fractions.items()]
            targets.append((run_dir / "final", 1.0, root / "final"))
        for adapter, fraction, where in targets:
            config = EvalConfig(
                tasks=list(ev.tasks),
                limit=ev.limit,
                adapter=str(adapter) if adapter else None,
                **settings,
            )
            _evaluate(config, where)
            write_json_atomic(where / "fraction.json", {"fraction": fraction})

    def tradeoff(self) -> None:
        from citi.reproduce.tradeoff import write_tradeoff

        write_tradeoff(self.out, self.config)

    def router(self) -> None:
        from citi.adapters import load_for_eval
        from citi.analysis.router import run_router_analysis
        from citi.data import load_dataset

        method = self._router_method()
        if method is None:
            raise CitiError("analysis-router: no method of the preset has MOLoRA routers")
        loaded = load_for_eval(
            self.config.model, str(self.out / "runs" / method), precision=self._eval_precision()
        )
        n = self.config.eval.router_examples
        groups = {
            "tool": load_dataset("apibank-l2", self.config.data_dir, limit=n),
            "non-tool": load_dataset("gsm8k-test", self.config.data_dir, limit=n),
        }
        run_router_analysis(loaded.model, loaded.tokenizer, groups, self.out / "analysis")

    def train_icc_reference(self) -> None:
        """The dashed lines of Fig. 2: a model fully fine-tuned on another ability's data."""
        values = self._train_values("ft", self.config.seeds[0]) | {
            "tool_dataset": self.config.icc.reference_dataset,
            "eval_datasets": [],
        }
        self._run_trainer("ft-reference", values, "icc.reference_dataset")

    def icc(self) -> None:
        from citi.analysis.icc import run_icc

        abilities = self.config.importance.get("abilities") or {
            "tool": "apibank-train",
            "math": "gsm8k",
            "code": "codealpaca",
            "knowledge": "triviaqa",
            "instruction": "alpaca",
        }
        settings = self.config.icc.settings()
        reference = None
        if self.config.icc.reference_dataset:
            reference = str(self.out / "runs" / "ft-reference")
        for method in [m for m in ("ft", "citi") if m in self.config.methods]:
            run_icc(
                self.config.model,
                str(self.out / "runs" / method),
                abilities,
                self.out / "analysis" / f"icc-{method}",
                reference=reference,
                data_dir=self.config.data_dir,
                **settings,
            )

    def replace(self) -> None:
        from citi.analysis.replace import run_replace

        rep = self.config.replace
        tuned = str(self.out / "runs" / "ft")
        config = EvalConfig(
            tasks=list(rep.tasks),
            limit=self.config.eval.limit,
            batch_size=self.config.eval.batch_size,
            adapter=tuned,
            **self._eval_run_settings(),
        )
        importance = read_json(self.out / "importance" / "importance.json")
        run_replace(config, importance, rep.settings, self.out / "analysis" / "replace")

    def _router_method(self) -> str | None:
        """The first method whose MOLoRA routers the router analysis reads (one seed's run)."""
        return next((m for m in self.config.methods if self.config.uses_router(m)), None)

    def _eval_run_settings(self) -> dict:
        """EvalConfig fields every evaluation of the preset shares."""
        cfg = self.config
        return {"model": cfg.model, "data_dir": cfg.data_dir, "precision": cfg.precision}

    def _eval_precision(self) -> str:
        from citi.models.loader import default_device
        from citi.precision import resolve_precision

        return resolve_precision(self.config.precision, default_device())

    def report(self) -> None:
        from citi.reproduce.report import write_report

        write_report(self.config, self.out, self.steps)


def _evaluate(config, out_dir: Path, judge=None) -> None:
    """Evaluate one run as ``config`` (an EvalConfig) says."""
    from citi.evaluation.runner import evaluate

    evaluate(config, out_dir, judge=judge)
