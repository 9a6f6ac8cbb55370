"""The evaluation config: one dataclass, validated before any model is loaded, shared by
``citi eval``, ``citi reproduce`` (its ``eval:`` section) and the Python API."""

from __future__ import annotations

from dataclasses import dataclass, field

from citi.errors import ConfigError
from citi.models.loader import DEFAULT_MODEL
from citi.precision import check_precision


@dataclass
class EvalConfig:
    tasks: list[str] = field(default_factory=list)
    model: str = DEFAULT_MODEL
    adapter: str | None = None  # a `citi train` run directory (or its final/)
    data_dir: str | None = None
    limit: int | None = None  # examples per task; None: all
    task_limits: dict[str, int] = field(default_factory=dict)  # per task, over `limit`
    batch_size: int = 8
    max_length: int = 2048
    dtype: str = "auto"
    device: str | None = None
    precision: str = "auto"
    unsafe_code: bool = False  # HumanEval without OS-level isolation
    # torch.compile the model for generation (citi.models.compiled; docs/guides/performance.md).
    compile: bool = False
    # A user's held-out conversations (the tool-calls task): --eval-data SRC (or canonical rows
    # from Python), or the --eval-fraction of --tool-data that training held out
    # (citi.data.user_data), in --format, rendered with chat_template (a file or template text).
    tool_data: str | None = None
    eval_data: str | None = None
    eval_fraction: float | None = None
    format: str = "auto"
    chat_template: str | None = None

    def __post_init__(self) -> None:
        from citi.evaluation.registry import get_task

        tasks = [t for t in self.tasks if isinstance(t, str) and t.strip()]
        if not tasks:
            raise ConfigError(f"--tasks: no task named in {self.tasks!r}")
        for task in tasks:
            get_task(task)  # an unknown name is one error line with the closest task
        if len(set(tasks)) != len(tasks):
            raise ConfigError(f"--tasks: a task is named twice in {', '.join(tasks)}")
        self.tasks = tasks
        for option, value, low in (
            ("--limit", self.limit, 1),
            ("--batch-size", self.batch_size, 1),
            ("--max-length", self.max_length, 16),
        ):
            if value is None and option == "--limit":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{option}: must be an integer >= {low}, got {value!r}")
        for task, value in (self.task_limits or {}).items():
            if task not in tasks:
                raise ConfigError(f"task_limits: {task!r} is not among the tasks")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"task_limits: {task} must be an integer >= 1, got {value!r}")
        check_precision(self.precision, "precision")
        from citi.data.user_data import check_user_options

        eval_text = self.eval_data if isinstance(self.eval_data, str) else None
        check_user_options(self.format, "all", self.eval_fraction, eval_text)
        if self.eval_fraction is not None and not self.tool_data:
            raise ConfigError("--eval-fraction: needs --tool-data (the data it holds out part of)")
        if self.eval_data is None and self.eval_fraction is None:
            from citi.evaluation.registry import TASKS

            needing = [t for t in tasks if TASKS[t].load is not None]
            if needing:
                raise ConfigError(
                    f"--eval-data: {', '.join(needing)} needs held-out conversations (a "
                    ".jsonl/.json/.parquet file, a folder or a hub id; or --tool-data with "
                    "--eval-fraction)"
                )

    def held_out(self) -> list:
        """The user's held-out conversations (canonical rows) to evaluate on: --eval-data, or
        the --eval-fraction of --tool-data, read with --format and --data-dir."""
        from citi.data.user_data import held_out_conversations

        return held_out_conversations(
            self.tool_data,
            self.eval_data,
            self.eval_fraction,
            data_dir=self.data_dir,
            fmt=self.format,
        )

    def eval_source(self):
        """What the tool-calls task reads: rows given from Python as they are, else a function
        reading the held-out conversations when the task runs."""
        if self.eval_data is None and self.eval_fraction is None:
            return None
        if self.eval_data is not None and not isinstance(self.eval_data, str):
            return self.eval_data
        return self.held_out

    def limit_of(self, task: str) -> int | None:
        return (self.task_limits or {}).get(task, self.limit)
