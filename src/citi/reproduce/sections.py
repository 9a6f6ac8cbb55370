"""The typed sections of a reproduction preset (configs/presets/*.yaml).

Each section is a dataclass built once, from its YAML mapping, by ``citi.config.config_from_dict``
(which names the key path of a typo: ``eval: unknown key(s) batch_szie``). Every default is
stated here once, or taken from the config the section feeds (EvalConfig's batch size and
length); the pipeline reads fields, never ``.get(key, default)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from citi.errors import ConfigError
from citi.evaluation.config import EvalConfig

DEFAULT_TASKS = [
    "apibank-l2",
    "apibank-l2-response",
    "gsm8k",
    "triviaqa",
    "retention-math",
    "retention-knowledge",
    "retention-tool",
]


def _default_of(cls: type, name: str):
    """A field's default as ``cls`` states it, so a section does not state it a second time."""
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


@dataclass
class EvalSection:
    """``eval:``: the tasks every run is scored on (EvalConfig's task settings), and how many
    examples per group the router analysis reads."""

    tasks: list[str] = field(default_factory=lambda: list(DEFAULT_TASKS))
    limit: int | None = _default_of(EvalConfig, "limit")  # examples per task; None: all
    task_limits: dict[str, int] = field(default_factory=dict)
    batch_size: int = _default_of(EvalConfig, "batch_size")
    max_length: int = _default_of(EvalConfig, "max_length")
    router_examples: int = 16

    def __post_init__(self) -> None:
        if self.tasks:  # the tasks and limits, checked as the EvalConfig they become
            self.eval_config()
        if isinstance(self.router_examples, bool) or self.router_examples < 1:
            raise ConfigError(f"eval.router_examples: must be >= 1, got {self.router_examples}")

    def eval_config(self, **run) -> EvalConfig:
        """The EvalConfig of one run: these settings plus the run's model, adapter, data..."""
        return EvalConfig(
            tasks=list(self.tasks),
            limit=self.limit,
            task_limits=dict(self.task_limits),
            batch_size=self.batch_size,
            max_length=self.max_length,
            **run,
        )


@dataclass
class SnapshotEvalSection:
    """``snapshot_eval:``: the cheap tasks scored on every training snapshot (the trade-off
    figure's lines); the batch size is ``eval:``'s."""

    tasks: list[str] = field(default_factory=list)
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.tasks:
            EvalConfig(tasks=list(self.tasks), limit=self.limit)


@dataclass
class SweepConfig:
    """``sweep:``: a short MOLoRA alpha sweep before the method runs. Each candidate trains
    ``method`` on the preset's train settings plus ``train`` and is scored by its loss on the
    held-out tool validation split (train.validation, never a test set); a variant with
    ``molora: {alpha: swept}`` uses the best."""

    alpha: list[float] = field(default_factory=list)
    method: str = "rp-mi"  # the stages that train MOLoRA; UCO does not depend on alpha
    train: dict = field(default_factory=dict)  # TrainConfig overrides of the candidates

    def __post_init__(self) -> None:
        from citi.train.methods import METHODS

        if len(self.alpha) < 2 or any(a <= 0 for a in self.alpha):
            raise ConfigError(f"sweep.alpha: need two or more positive numbers, got {self.alpha!r}")
        method = METHODS.get(self.method)
        if method is None or "mi" not in {s.name for s in method.stages}:
            raise ConfigError(
                f"sweep.method: needs a method with a MOLoRA stage, got {self.method!r}"
            )


@dataclass
class TuneConfig:
    """``tune:``: one learning-rate protocol for every method (citi.reproduce.tuning). Each
    method in ``methods`` (default: all) trains once per factor of ``lr_scale``, every stage's
    learning rate multiplied by it, on the ``seed`` run (a seed kept out of the preset's
    ``seeds``: the confirmatory runs never share the tuning run's noise) with ``train``'s
    overrides; the factor with the lowest loss on the held-out tool validation split
    (train.validation) is used by all of the method's runs."""

    lr_scale: list[float] = field(default_factory=list)
    seed: int = 0
    methods: list[str] | None = None  # None: every method of the preset
    train: dict = field(default_factory=dict)  # TrainConfig overrides of the candidates

    def __post_init__(self) -> None:
        scales = self.lr_scale
        if len(scales) < 2 or any(
            isinstance(x, bool) or not isinstance(x, int | float) or not x > 0 for x in scales
        ):
            raise ConfigError(f"tune.lr_scale: two or more positive factors, got {scales!r}")
        if len(set(scales)) != len(scales):
            raise ConfigError(f"tune.lr_scale: a factor is listed twice: {scales!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"tune.seed: an integer >= 0, got {self.seed!r}")
        if not isinstance(self.train, dict):
            raise ConfigError("tune.train: must be a map of settings")
        for key in ("lr", "seed", "max_steps"):
            if key in self.train:
                raise ConfigError(f"tune.train.{key}: the protocol sets it")


@dataclass
class JudgeConfig:
    """``judge:``: an OpenAI-compatible judge for mtbench and toolalpaca-* (see citi eval)."""

    url: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if not (self.url and self.model):
            raise ConfigError("judge: needs both url and model (--judge-url, --judge-model)")
        self.judge()  # validates the URL

    def judge(self):
        from citi.evaluation.judge import Judge

        return Judge(self.url, self.model)


@dataclass
class IccConfig:
    """``icc:``: settings of the ICC analysis (needs an `ft` run). With ``reference_dataset``
    (e.g. codealpaca) an extra `ft` run on that data draws Fig. 2's dashed lines."""

    samples: int = 32
    max_length: int = 512
    seed: int | None = None  # None: run_icc's own
    batch_size: int | None = None  # None: run_icc's own
    reference_dataset: str | None = None

    def settings(self) -> dict:
        """The keyword arguments of ``run_icc`` this section sets."""
        values = dataclasses.asdict(self)
        del values["reference_dataset"]
        return {k: v for k, v in values.items() if v is not None}


@dataclass
class ReplaceConfig:
    """``replace:``: the component replacement analysis (needs an `ft` run)."""

    settings: list[str] = field(default_factory=lambda: ["T-20", "T-50", "D-20", "D-50"])
    tasks: list[str] = field(default_factory=lambda: ["retention-math", "retention-knowledge"])


@dataclass(frozen=True)
class Run:
    """One training run of a preset: a method (or variant) trained with one seed."""

    name: str  # the method's name for the first seed, "<method>-seed<S>" for the others
    method: str  # the method or variant name in ``methods``
    seed: int
