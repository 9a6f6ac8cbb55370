import json
import os
import subprocess
import sys
from pathlib import Path

from citi.train.loop import Trainer
from tests.helpers import small_config


def _losses(run: Path) -> list[float]:
    """LM losses of the steps that have one (stage RP logs only its routing loss, which is
    var/mean² over each process's own examples and so differs between 1 and 2 processes)."""
    records = [json.loads(line) for line in open(run / "metrics.jsonl")]
    return [r["lm_loss"] for r in records if r["lm_loss"] is not None]


def test_two_cpu_processes_match_one_process(tmp_path, data_dir, selection_file):
    """2 gloo processes x batch 2 against 1 process x batch 4: the same global batches."""
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "-m",
        "citi.cli.main",
        "train",
        "--method",
        "citi",
        "--model",
        "tiny-llama",
        "--selection",
        str(selection_file),
        "--data-dir",
        str(data_dir),
        "--mix-per-source",
        "3",
        "--max-length",
        "160",
        "--batch-size",
        "2",
        "--grad-accum",
        "2",
        "--seed",
        "7",
        "--save-every",
        "0",
        "--precision",
        "fp32",
        "--out",
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = small_config(data_dir, selection_file, batch_size=4)
    Trainer(config, tmp_path / "single").run()
    ddp, single = _losses(tmp_path / "ddp"), _losses(tmp_path / "single")
    assert len(ddp) == len(single) > 5
    # DDP averages per-process mean losses, one process takes one mean over all tokens:
    # the curves agree closely but not exactly.
    for a, b in zip(ddp, single, strict=True):
        assert abs(a - b) < 0.05 * b
    assert (tmp_path / "ddp" / "final" / "adapter.safetensors").is_file()
