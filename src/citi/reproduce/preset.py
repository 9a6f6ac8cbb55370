"""Reproduction presets: one YAML per preset under configs/presets/ (tiny, smol, paper)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from citi.config import load_yaml_config
from citi.errors import ConfigError

SWEPT = "swept"  # molora alpha of a variant that takes the sweep's choice

DEFAULT_TASKS = [
    "apibank-l2",
    "apibank-l2-response",
    "gsm8k",
    "triviaqa",
    "retention-math",
    "retention-knowledge",
    "retention-tool",
]


@dataclass
class ReproduceConfig:
    name: str = "custom"
    note: str = ""  # what this preset can and cannot show; printed in the report
    model: str = "smollm2-135m-instruct"
    data_dir: str | None = None
    # Compute precision of every step (fp32, bf16 or auto: bf16 where the hardware is fast).
    precision: str = "auto"
    methods: list[str] = field(default_factory=lambda: ["ft", "lora", "citi"])
    # Training seeds: every method is trained (and evaluated) once per seed, so the report can
    # set the differences between methods against the run-to-run noise.
    seeds: list[int] = field(default_factory=lambda: [42])
    importance: dict = field(default_factory=dict)  # ImportanceConfig fields
    train: dict = field(default_factory=dict)  # TrainConfig fields shared by every method
    train_per_method: dict = field(default_factory=dict)  # method -> TrainConfig fields
    eval: dict = field(
        default_factory=lambda: {"tasks": list(DEFAULT_TASKS), "limit": 32, "batch_size": 8}
    )
    # Named runs beyond the built-in methods: name -> {method: M, ...TrainConfig fields}, e.g.
    # citi-alpha16: {method: citi, molora: {alpha: 16}}. Their names go in `methods`.
    variants: dict = field(default_factory=dict)
    # Snapshot evaluation for the trade-off figure: {tasks: [...], limit: N}; the snapshots
    # themselves are asked for with train.snapshots (fractions of training).
    snapshot_eval: dict = field(default_factory=dict)
    # A short MOLoRA alpha sweep before the method runs: {alpha: [2, 8, 16, 32], method: rp-mi,
    # train: {...TrainConfig overrides}}. Each candidate trains on the preset's train settings
    # plus these overrides and is scored by its loss on the held-out tool validation split
    # (train.validation, never a test set); a variant with molora: {alpha: swept} uses the best.
    sweep: dict = field(default_factory=dict)
    # False for presets too small to decide anything: verdicts are printed as such.
    decisive: bool = True
    # Settings of the verdicts' paired tests (citi.reproduce.comparisons): tool_margin (the
    # non-inferiority margin of "comparable tool use", a share), x_star (the tool NLL drop at
    # which drift is compared at equal learning, fixed before the runs), resamples.
    stats: dict = field(default_factory=dict)
    # A pilot's pre-registered go / no-go thresholds {tool_gain, fall, leak}
    # (citi.reproduce.pilot); empty for every other preset.
    pilot: dict = field(default_factory=dict)
    analyses: list[str] = field(default_factory=lambda: ["jaccard", "router", "errors"])
    # {url, model} of an OpenAI-compatible judge for mtbench and toolalpaca-* (see citi eval).
    judge: dict = field(default_factory=dict)
    # Settings of the optional "icc" and "replace" analyses (both need an `ft` run). With
    # icc.reference_dataset (e.g. codealpaca) an extra `ft` run on that data draws Fig. 2's
    # dashed lines.
    icc: dict = field(default_factory=lambda: {"samples": 32, "max_length": 512})
    replace: dict = field(
        default_factory=lambda: {
            "settings": ["T-20", "T-50", "D-20", "D-50"],
            "tasks": ["retention-math", "retention-knowledge"],
        }
    )

    def __post_init__(self) -> None:
        from citi.precision import check_precision
        from citi.train.methods import METHODS

        check_precision(self.precision, "precision")
        for name, spec in self.variants.items():
            if not isinstance(spec, dict) or spec.get("method") not in METHODS:
                raise ConfigError(f"variants.{name}: needs method: one of {', '.join(METHODS)}")
            if name in METHODS or "-seed" in name:
                raise ConfigError(f"variants.{name}: the name clashes with a method or a seed run")
        unknown = [m for m in self.methods if m not in METHODS and m not in self.variants]
        if unknown:
            raise ConfigError(
                f"--methods: unknown method(s) {', '.join(unknown)}; choose from "
                f"{', '.join(METHODS)}"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: need one or more distinct integers, got {self.seeds}")
        if any(isinstance(s, bool) or not isinstance(s, int) for s in self.seeds):
            raise ConfigError(f"seeds: must be integers, got {self.seeds}")
        if self.judge:
            from citi.evaluation.judge import Judge

            if set(self.judge) - {"url", "model"} or not (
                self.judge.get("url") and self.judge.get("model")
            ):
                raise ConfigError("judge: needs both url and model (--judge-url, --judge-model)")
            Judge(self.judge["url"], self.judge["model"])  # validates the URL
        if "seed" in self.train:
            raise ConfigError("train.seed: set the training seeds with `seeds:` instead")
        self._check_sweep()
        self._check_sections()
        from citi.reproduce.comparisons import check_stats

        check_stats(self.stats)
        from citi.reproduce.pilot import check_pilot

        check_pilot(self.pilot)
        extra = set(self.analyses) - {"jaccard", "router", "errors", "icc", "replace"}
        if extra:
            raise ConfigError(f"analyses: unknown analysis {', '.join(sorted(extra))}")
        if {"icc", "replace"} & set(self.analyses) and "ft" not in self.methods:
            raise ConfigError(
                "analyses: icc and replace compare against the `ft` run; add ft to --methods"
            )

    def _check_sections(self) -> None:
        """Every section checked as the config it becomes, before any work starts: a typo in
        ``train:`` must not surface after hours of importance."""
        from citi.config import config_from_dict
        from citi.importance.run import ImportanceConfig
        from citi.train.config import TrainConfig

        for section in ("importance", "train", "train_per_method", *SECTION_KEYS):
            if not isinstance(getattr(self, section), dict):
                raise ConfigError(f"{section}: must be a map of settings")
        _in_section("importance", lambda: config_from_dict(ImportanceConfig, self.importance, ""))
        for method in self.methods:
            # the sweep decides a swept alpha; any valid number checks the other settings
            values = self.train_values(method, "selection.json", self.seeds[0], swept_alpha=1.0)
            where = f"variants.{method}" if method in self.variants else "train"
            _in_section(where, lambda v=values: config_from_dict(TrainConfig, v, ""))
        for section, allowed in SECTION_KEYS.items():
            typos = sorted(set(getattr(self, section)) - allowed)
            if typos:
                raise ConfigError(
                    f"{section}: unknown key(s) {', '.join(typos)}; "
                    f"known: {', '.join(sorted(allowed))}"
                )
        from citi.evaluation.config import EvalConfig

        keys = ("tasks", "limit", "batch_size", "max_length", "task_limits")
        for section in ("eval", "snapshot_eval"):
            values = {k: v for k, v in getattr(self, section).items() if k in keys}
            if values.get("tasks"):
                _in_section(section, lambda v=values: config_from_dict(EvalConfig, v, ""))

    def _check_sweep(self) -> None:
        from citi.train.methods import METHODS

        swept = [n for n, v in self.variants.items() if v.get("molora", {}).get("alpha") == SWEPT]
        if swept and not self.sweep:
            raise ConfigError(f"variants.{swept[0]}: alpha: {SWEPT} needs a sweep: section")
        if not self.sweep:
            return
        typos = sorted(set(self.sweep) - {"alpha", "method", "train"})
        if typos:
            raise ConfigError(
                f"sweep: unknown key(s) {', '.join(typos)}; known: alpha, method, train"
            )
        alphas = self.sweep.get("alpha")
        if (
            not isinstance(alphas, list)
            or len(alphas) < 2
            or any(isinstance(a, bool) or not isinstance(a, int | float) or a <= 0 for a in alphas)
        ):
            raise ConfigError(f"sweep.alpha: need two or more positive numbers, got {alphas!r}")
        method = self.sweep.get("method", "rp-mi")
        if method not in METHODS or "mi" not in {s.name for s in METHODS[method].stages}:
            raise ConfigError(f"sweep.method: needs a method with a MOLoRA stage, got {method!r}")
        if not isinstance(self.sweep.get("train", {}), dict):
            raise ConfigError("sweep.train: must be a map of training settings")
        validation = {**self.train, **self.sweep.get("train", {})}.get("validation", 0)
        if not validation:
            raise ConfigError("sweep: needs a held-out split (train.validation: N) to score on")

    def train_values(
        self, name: str, selection: str, seed: int, swept_alpha: float | None = None
    ) -> dict:
        """TrainConfig fields of one run of method or variant ``name``: the shared ``train:``
        settings, the method's own, the variant's, and ``alpha: swept`` replaced."""
        method = self.method_of(name)
        variant = {k: v for k, v in self.variants.get(name, {}).items() if k != "method"}
        molora = {**self.train.get("molora", {}), **variant.pop("molora", {})}
        if molora.get("alpha") == SWEPT:
            molora["alpha"] = swept_alpha
        values = {
            "method": method,
            "model": self.model,
            "data_dir": self.data_dir,
            "selection": selection,
            "precision": self.precision,
            **self.train,
            **self.train_per_method.get(method, {}),
            **variant,
            "seed": seed,
        }
        if molora:
            values["molora"] = molora
        return values

    def method_of(self, name: str) -> str:
        """The training method of a method or variant name."""
        return self.variants[name]["method"] if name in self.variants else name

    def run_names(self, method: str) -> list[str]:
        """Run names of ``method``, one per seed; the first seed keeps the plain method name."""
        return [method] + [f"{method}-seed{s}" for s in self.seeds[1:]]

    def seed_of(self, run: str) -> int:
        return int(run.rsplit("-seed", 1)[1]) if "-seed" in run else self.seeds[0]


# The keys each free-form section takes (the others are checked as the configs they become).
SECTION_KEYS = {
    "eval": {"tasks", "limit", "batch_size", "max_length", "router_examples", "task_limits"},
    "snapshot_eval": {"tasks", "limit"},
    "icc": {"samples", "max_length", "seed", "batch_size", "reference_dataset"},
    "replace": {"settings", "tasks"},
}


def _in_section(section: str, build) -> None:
    """Run a config constructor, naming the preset section in its error."""
    try:
        build()
    except ConfigError as err:
        raise ConfigError(f"{section}: {str(err).removeprefix(': ')}") from None


def preset_dirs() -> list[Path]:
    here = Path(__file__).resolve()
    return [Path.cwd() / "configs" / "presets", here.parents[3] / "configs" / "presets"]


def load_preset(name_or_path: str, **overrides) -> ReproduceConfig:
    path = Path(name_or_path)
    if not path.suffix:
        for d in preset_dirs():
            if (d / f"{name_or_path}.yaml").is_file():
                path = d / f"{name_or_path}.yaml"
                break
        else:
            names = sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.yaml")})
            raise ConfigError(f"--preset: no preset {name_or_path!r} (known: {', '.join(names)})")
    return load_yaml_config(ReproduceConfig, path, **overrides)
