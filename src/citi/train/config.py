"""The training config: one dataclass, mirrored by configs/<method>.yaml, saved with every run."""

from __future__ import annotations

import math
from dataclasses import dataclass

from citi.config import comma_list, parse_pairs, setting
from citi.data.datadir import DATA_DIR_HELP
from citi.data.user_data import check_user_options
from citi.errors import ConfigError
from citi.models.loader import ALIASES, DEFAULT_MODEL, DTYPES
from citi.molora.config import MoloraConfig
from citi.precision import PRECISION_HELP, PRECISIONS, check_precision
from citi.train.methods import METHODS
from citi.train.sharding import SHARDING
from citi.train.trackers import REPORT_TO

MAX_EPOCHS = 1000  # beyond this a run is a typo (1e12 would run for ever)

LR_SCHEDULES = ("cosine", "constant")
DEFAULT_GENERAL = {
    "math": "gsm8k",
    "code": "codealpaca",
    "knowledge": "triviaqa",
    "instruction": "alpaca",
}


def _parse_snapshots(text: str) -> list[float]:
    try:
        return [float(x) for x in comma_list(text)]
    except ValueError:
        raise ConfigError(f"--snapshots: expected fractions like 0.25,0.5, got {text!r}") from None


@dataclass
class TrainConfig:
    """The settings of one training run. Each field's help text and command-line form live
    here (citi.config.setting): `citi train`'s options are generated from them."""

    method: str = setting("citi", choices=tuple(METHODS))
    model: str = setting(
        DEFAULT_MODEL, help=f"alias ({', '.join(ALIASES)}), directory, .gguf or hub id"
    )
    selection: str | None = setting(None, help="selection.json from `citi importance`")
    data_dir: str | None = setting(None, help=DATA_DIR_HELP)
    # A named dataset or a user's file/folder/hub id (--tool-data; see citi.data.user_data).
    tool_dataset: str = setting(
        "apibank-train", help="tool training data (the same as --tool-data)"
    )
    tool_limit: int | None = setting(None, help="use only N tool examples (seeded sample)")
    general: dict[str, str] = setting(
        default_factory=lambda: dict(DEFAULT_GENERAL),
        help="ability=dataset pairs of general data to mix in",
        parse=lambda text: parse_pairs(text, "--general", "ability=dataset"),
    )
    # User data: its format (auto: recognised per file), which assistant turns are supervised,
    # a Jinja chat template file overriding citi's choice, and the held-out evaluation data
    # (--eval-data SRC, or --eval-fraction F of the tool data's conversations). Their options
    # are citi.cli.common.add_user_data's, shared with `citi importance` and `citi eval`.
    format: str = setting("auto")
    supervise: str = setting("all")
    chat_template: str | None = setting(None)
    eval_data: str | None = setting(None)
    eval_fraction: float | None = setting(None)
    # None: the method's default (mixed for CITI and ablations)
    mix: bool | None = setting(None, help="mix general data in (default: the method's choice)")
    mix_per_source: int = setting(5000, help="general examples per source")
    max_length: int = setting(1024, help="tokens per example")
    batch_size: int = setting(4, help="per device")
    # 4 x 16 = the paper's effective batch of 64 on one device
    grad_accum: int = setting(16, help="micro-batches per optimizer step")
    # Micro-batches of examples of similar length (seeded, resumable; citi.train.batching): less
    # padding, the same examples and per-token losses. Off by default so that runs saved before
    # it existed (whose config.yaml lacks it) resume in the order they started with.
    group_by_length: bool = setting(
        False,
        help="micro-batches of examples of similar length: less padding, same examples "
        "(seeded, resumable)",
    )
    # Per stage name, overriding the method's; the command line's "2" or "mi=2,uco=1" is
    # parsed by citi.cli.train, which knows the method's stages.
    epochs: dict[str, float] = setting(default_factory=dict, cli=False)
    lr: dict[str, float] = setting(default_factory=dict, cli=False)
    warmup_ratio: float = setting(0.1, help="share of a stage's steps warming the learning rate up")
    # "cosine" (decay to 0 after the warmup, the paper's) or "constant" (flat after the warmup:
    # late steps learn as much as early ones, so snapshots compare learning, not decay).
    lr_schedule: str = setting(
        "cosine",
        choices=LR_SCHEDULES,
        help="learning rate after the warmup: cosine decay to 0 or constant",
    )
    weight_decay: float = setting(0.0)
    max_grad_norm: float = setting(1.0, help="gradient-norm clipping")
    seed: int = setting(42)
    # 0: only at stage ends
    save_every: int = setting(200, help="optimizer steps between checkpoints")
    # Pause after this many optimizer steps in all, with a checkpoint: --resume (without it, or
    # with a larger one) continues exactly as if the run had not stopped. None: run to the end.
    max_steps: int | None = setting(
        None, help="pause after N optimizer steps in all, with a checkpoint; --resume continues"
    )
    gradient_checkpointing: bool = setting(False)
    compile: bool = setting(  # citi.models.compiled
        False,
        help="torch.compile the decoder (off by default: docs/guides/performance.md has the "
        "measured ratio)",
    )
    sharding: str = setting(
        "none",
        choices=SHARDING,
        help="fsdp: shard weights, gradients and optimizer state over the processes (FSDP2; "
        "launch with torchrun or accelerate, see configs/accelerate/)",
    )
    eval_datasets: list[str] = setting(
        default_factory=list,
        option="--eval",
        help="datasets whose mean label loss is logged before and after each stage",
        parse=comma_list,
    )
    eval_limit: int = setting(64, help="examples per eval dataset")
    # Fractions of all optimizer steps (e.g. [0.25, 0.5, 0.75]) at which the adapter is also
    # saved, under snapshots/step-NNNNN/, for learning-vs-forgetting curves.
    snapshots: list[float] = setting(
        default_factory=list,
        help="fractions of all optimizer steps at which the adapter is also saved "
        "(e.g. 0.25,0.5,0.75), under OUT/snapshots/",
        parse=_parse_snapshots,
    )
    # Tool examples held out of training (after the --tool-limit sample) as a validation set;
    # their mean label loss is logged like --eval under the name "tool-validation".
    validation: int = setting(
        0,
        help="tool examples held out of training (a fixed seeded choice); their loss is logged "
        "as tool-validation before and after each stage",
    )
    # weights; "auto" = float32 (the master copy under --precision bf16)
    dtype: str = setting("auto", choices=("auto", *DTYPES), help="weights dtype")
    # compute: fp32, bf16 (autocast) or auto (bf16 where it is fast)
    precision: str = setting("auto", choices=PRECISIONS, help=PRECISION_HELP)
    device: str | None = setting(None, help="torch device (default: cuda if available)")
    # An experiment tracker fed through accelerate (citi.train.trackers); metrics.jsonl either way.
    report_to: str = setting(
        "none",
        choices=REPORT_TO,
        help="also log per-step losses, learning rate, tokens/s and router null mass, and the "
        "config, to this tracker (tensorboard: under OUT/logs/)",
    )
    # MoloraConfig fields; the command line's --num-experts, --rank, ... (citi.cli.train)
    molora: dict = setting(default_factory=dict, cli=False)
    # LoRA methods: {rank, alpha} replacing the method's (e.g. alpha = 2 x rank for every method)
    lora: dict = setting(default_factory=dict, cli=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"--method: unknown method {self.method!r}; choose one of {', '.join(METHODS)}"
            )
        method = METHODS[self.method]
        if method.needs_selection and not self.selection:
            raise ConfigError(
                f"--selection: method {self.method} needs a selection.json (from `citi importance`)"
            )
        stage_names = {s.name for s in method.stages}
        for opt, table in (("--epochs", self.epochs), ("--lr", self.lr)):
            for name, value in table.items():
                if name not in stage_names:
                    raise ConfigError(
                        f"{opt}: method {self.method} has no stage {name!r} "
                        f"(stages: {', '.join(sorted(stage_names))})"
                    )
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(f"{opt}: {name} must be a number, got {value!r}")
                limit = MAX_EPOCHS if opt == "--epochs" else 1.0
                if not (math.isfinite(value) and 0 < value <= limit):
                    raise ConfigError(f"{opt}: {name} must be in (0, {limit:g}], got {value}")
        for opt, value, low in (
            ("--batch-size", self.batch_size, 1),
            ("--grad-accum", self.grad_accum, 1),
            ("--max-length", self.max_length, 16),
            ("--mix-per-source", self.mix_per_source, 0),
            ("--save-every", self.save_every, 0),
            ("--eval-limit", self.eval_limit, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ConfigError(f"{opt}: must be an integer >= {low}, got {value!r}")
        if not isinstance(self.snapshots, list) or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < 1
            for f in self.snapshots
        ):
            raise ConfigError(f"--snapshots: fractions in (0, 1), got {self.snapshots!r}")
        if self.max_steps is not None and (
            isinstance(self.max_steps, bool)
            or not isinstance(self.max_steps, int)
            or self.max_steps < 1
        ):
            raise ConfigError(f"--max-steps: must be an integer >= 1, got {self.max_steps!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"--compile: must be true or false, got {self.compile!r}")
        if not isinstance(self.group_by_length, bool):
            raise ConfigError(
                f"--group-by-length: must be true or false, got {self.group_by_length!r}"
            )
        if not isinstance(self.validation, int) or self.validation < 0:
            raise ConfigError(f"--validation: must be an integer >= 0, got {self.validation!r}")
        if self.tool_limit is not None and (
            isinstance(self.tool_limit, bool) or not isinstance(self.tool_limit, int)
        ):
            raise ConfigError(f"--tool-limit: must be an integer, got {self.tool_limit!r}")
        if self.tool_limit is not None and self.tool_limit < 1:
            raise ConfigError(f"--tool-limit: must be >= 1, got {self.tool_limit}")
        for opt, value in (
            ("--warmup-ratio", self.warmup_ratio),
            ("--weight-decay", self.weight_decay),
            ("--max-grad-norm", self.max_grad_norm),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{opt}: must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{opt}: must be a finite number >= 0, got {value}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"--warmup-ratio: must be in [0, 1), got {self.warmup_ratio}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed: must be an integer >= 0, got {self.seed!r}")
        check_precision(self.precision)
        check_user_options(self.format, self.supervise, self.eval_fraction, self.eval_data)
        if self.report_to not in REPORT_TO:
            raise ConfigError(
                f"--report-to: choose one of {', '.join(REPORT_TO)}, got {self.report_to!r}"
            )
        if self.sharding not in SHARDING:
            raise ConfigError(f"--sharding: choose none or fsdp, got {self.sharding!r}")
        self._molora = self._build_molora_config()  # validates the MOLoRA fields, once
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"--lr-schedule: choose {' or '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        self.lora_settings()  # validates the LoRA fields

    @property
    def method_spec(self):
        return METHODS[self.method]

    @property
    def use_mix(self) -> bool:
        return self.method_spec.mix if self.mix is None else self.mix

    def molora_config(self) -> MoloraConfig:
        """The MOLoRA settings: ``molora`` over the method's null-expert default."""
        return self._molora

    def _build_molora_config(self) -> MoloraConfig:
        values = dict(self.molora)
        values.setdefault("null_expert", self.method_spec.null_expert)
        try:
            return MoloraConfig(**values)
        except TypeError as err:
            raise ConfigError(f"molora: {err}") from None

    def lora_settings(self) -> tuple[int, float]:
        """(rank, alpha) of a LoRA method: the method's, with ``lora:`` overriding."""
        typos = sorted(set(self.lora) - {"rank", "alpha"})
        if typos:
            raise ConfigError(f"lora: unknown key(s) {', '.join(typos)}; known: alpha, rank")
        rank = self.lora.get("rank", self.method_spec.lora_rank)
        alpha = self.lora.get("alpha", self.method_spec.lora_alpha)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"lora.rank: an integer >= 1, got {rank!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha > 0:
            raise ConfigError(f"lora.alpha: a number > 0, got {alpha!r}")
        return rank, alpha

    def stages(self):
        from dataclasses import replace

        return [
            replace(s, lr=self.lr.get(s.name, s.lr), epochs=self.epochs.get(s.name, s.epochs))
            for s in self.method_spec.stages
        ]
