"""Reproduction presets: one YAML per preset under configs/presets/ (tiny, smol, cpu, paper).

A preset is one ``ReproduceConfig``; its sections are typed (citi.reproduce.sections), built
once from the YAML by ``citi.config.config_from_dict``. ``importance``, ``train``,
``train_per_method`` and ``variants`` hold overrides of the configs each run builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from citi.config import build_sections, load_yaml_config
from citi.errors import ConfigError
from citi.reproduce.sections import (
    EvalSection,
    IccConfig,
    JudgeConfig,
    ReplaceConfig,
    Run,
    SnapshotEvalSection,
    SweepConfig,
    TuneConfig,
)

SWEPT = "swept"  # molora alpha of a variant that takes the sweep's choice


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
    eval: EvalSection = field(default_factory=EvalSection)
    # Named runs beyond the built-in methods: name -> {method: M, ...TrainConfig fields}, e.g.
    # citi-alpha16: {method: citi, molora: {alpha: 16}}. Their names go in `methods`.
    variants: dict = field(default_factory=dict)
    # Snapshot evaluation for the trade-off figure; the snapshots themselves are asked for with
    # train.snapshots (fractions of training).
    snapshot_eval: SnapshotEvalSection | None = None
    sweep: SweepConfig | None = None  # an alpha sweep before the method runs
    # One learning-rate tuning protocol for every method, on a seed kept out of `seeds`
    # (citi.reproduce.tuning); None: every method trains at its preset learning rates.
    tune: TuneConfig | None = None
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
    judge: JudgeConfig | None = None  # for mtbench and toolalpaca-*
    # Settings of the optional "icc" and "replace" analyses (both need an `ft` run).
    icc: IccConfig = field(default_factory=IccConfig)
    replace: ReplaceConfig = field(default_factory=ReplaceConfig)

    def __post_init__(self) -> None:
        from citi.precision import check_precision
        from citi.train.methods import METHODS

        # Sections given as mappings (ReproduceConfig(eval={...}) in Python) built as from YAML.
        for key, value in build_sections(type(self), vars(self)).items():
            setattr(self, key, value)
        check_precision(self.precision, "precision")
        for section in ("importance", "train", "train_per_method", "variants"):
            if not isinstance(getattr(self, section), dict):
                raise ConfigError(f"{section}: must be a map of settings")
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
        if "seed" in self.train:
            raise ConfigError("train.seed: set the training seeds with `seeds:` instead")
        if "max_steps" in self.train:
            raise ConfigError("train.max_steps: a preset trains every run to its end")
        self._check_sweep()
        self._build_configs()
        from citi.reproduce.comparisons import check_stats

        check_stats(self.stats)
        from citi.reproduce.pilot import check_pilot

        check_pilot(self.pilot)
        from citi.reproduce.tuning import check_tune

        check_tune(self)
        extra = set(self.analyses) - {"jaccard", "router", "errors", "icc", "replace"}
        if extra:
            raise ConfigError(f"analyses: unknown analysis {', '.join(sorted(extra))}")
        if {"icc", "replace"} & set(self.analyses) and "ft" not in self.methods:
            raise ConfigError(
                "analyses: icc and replace compare against the `ft` run; add ft to --methods"
            )

    def _check_sweep(self) -> None:
        swept = [
            n
            for n, v in self.variants.items()
            if isinstance(v.get("molora"), dict) and v["molora"].get("alpha") == SWEPT
        ]
        if swept and not self.sweep:
            raise ConfigError(f"variants.{swept[0]}: alpha: {SWEPT} needs a sweep: section")
        if self.sweep:
            validation = {**self.train, **self.sweep.train}.get("validation", 0)
            if not validation:
                raise ConfigError("sweep: needs a held-out split (train.validation: N) to score on")

    def _build_configs(self) -> None:
        """The importance config, built once; every method's training settings checked as the
        TrainConfig they become, before any work starts: a typo in ``train:`` must not surface
        after hours of importance. (A run's TrainConfig is built when it trains: it needs the
        selection path and the sweep's alpha.)"""
        from citi.config import config_from_dict
        from citi.importance.run import ImportanceConfig
        from citi.train.config import TrainConfig
        from citi.train.trackers import check_tracker

        values = {
            "model": self.model,
            "data_dir": self.data_dir,
            "precision": self.precision,
            **self.importance,
        }
        self.importance_config = _in_section(
            "importance", lambda: config_from_dict(ImportanceConfig, values, "")
        )
        for method in self.methods:
            # the sweep decides a swept alpha; any valid number checks the other settings
            values = self.train_values(method, "selection.json", self.seeds[0], swept_alpha=1.0)
            where = f"variants.{method}" if method in self.variants else "train"
            config = _in_section(where, lambda v=values: config_from_dict(TrainConfig, v, ""))
            _in_section(where, lambda c=config: check_tracker(c.report_to))  # package installed

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

    def uses_router(self, name: str) -> bool:
        """Whether method or variant ``name`` trains MOLoRA routers with a null expert (what
        the router analysis reads)."""
        from citi.train.methods import METHODS

        method = METHODS[self.method_of(name)]
        return method.adapter == "molora" and method.null_expert

    def runs(self, method: str | None = None) -> list[Run]:
        """The training runs of ``method`` (of every method when None), one per seed; the
        first seed keeps the plain method name."""
        methods = self.methods if method is None else [method]
        return [
            Run(m if i == 0 else f"{m}-seed{seed}", m, seed)
            for m in methods
            for i, seed in enumerate(self.seeds)
        ]

    def run(self, name: str) -> Run:
        """The run called ``name``."""
        found = {r.name: r for m in [*self.methods, *self.variants] for r in self.runs(m)}
        if name not in found:
            raise ConfigError(f"no run {name!r} in this preset")
        return found[name]

    def run_names(self, method: str) -> list[str]:
        return [r.name for r in self.runs(method)]

    def seed_of(self, run: str) -> int:
        return self.run(run).seed


def _in_section(section: str, build):
    """Run a config constructor, naming the preset section in its error."""
    try:
        return build()
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
