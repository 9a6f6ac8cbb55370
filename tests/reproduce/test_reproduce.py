import json
import re
from pathlib import Path

import pytest
import yaml

from citi.cli.main import main
from citi.reproduce import load_preset

ROOT = Path(__file__).resolve().parents[2]


def _preset(tmp_path, data_dir) -> Path:
    preset = {
        "name": "test",
        "note": "tiny-llama on fixtures",
        "model": "tiny-llama",
        "data_dir": str(data_dir),
        "methods": ["ft", "lora", "citi"],
        "analyses": ["jaccard", "router", "errors", "icc", "replace"],
        "icc": {"samples": 2, "max_length": 160, "reference_dataset": "codealpaca"},
        "replace": {"settings": ["T-20"], "tasks": ["retention-math"]},
        "importance": {"samples": 4, "batch_size": 2, "max_length": 160},
        "train": {
            "tool_limit": 8,
            "mix_per_source": 2,
            "max_length": 160,
            "batch_size": 2,
            "grad_accum": 2,
            "save_every": 0,
            "eval_datasets": ["apibank-l2"],
            "eval_limit": 2,
        },
        "eval": {
            "tasks": [
                "apibank-l2",
                "apibank-l2-response",
                "bfcl-simple",
                "triviaqa",
                "retention-math",
            ],
            "limit": 2,
            "batch_size": 2,
            "router_examples": 2,
        },
    }
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


def test_reproduce_end_to_end_and_resume(tmp_path, data_dir, monkeypatch):
    out = tmp_path / "report"
    assert main(["reproduce", "--preset", str(_preset(tmp_path, data_dir)), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for heading in (
        "Table 3",
        "error taxonomy",
        "BFCL verdicts",
        "Training",
        "Fig. 3",
        "Fig. 6",
        "Time per step",
        "Settings",
    ):
        assert heading in report
    assert "| base |" in report and "| citi |" in report and "| lora |" in report
    assert "attention (ref)" in report and (out / "runs" / "ft-reference" / "final").is_dir()
    for figure in (
        "analysis/jaccard.png",
        "analysis/router.png",
        "analysis/replace/replace.png",
        "analysis/icc-ft/icc.png",
        "analysis/icc-citi/icc.png",
    ):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
        assert figure in report
    steps = json.loads((out / "steps.json").read_text())
    assert all(s["done"] for s in steps.values())
    assert {"importance", "train-citi", "eval-base", "eval-citi", "report"} <= set(steps)

    # A rerun redoes nothing: every step is skipped.
    import citi.reproduce.pipeline as pipeline

    for name in (
        "importance",
        "train",
        "train_icc_reference",
        "evaluate",
        "router",
        "jaccard",
        "icc",
        "replace",
        "report",
    ):
        monkeypatch.setattr(
            pipeline.Pipeline, name, lambda *a, name=name, **k: pytest.fail(f"{name} redone")
        )
    assert main(["reproduce", "--preset", str(_preset(tmp_path, data_dir)), "--out", str(out)]) == 0


@pytest.mark.parametrize("name", ["tiny", "smol", "cpu", "paper"])
def test_shipped_presets_load(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = load_preset(name)
    assert config.name == name and config.methods


def test_unknown_preset_and_method(tmp_path, capsys):
    assert main(["reproduce", "--preset", "nope", "--out", str(tmp_path)]) == 2
    assert "no preset 'nope'" in capsys.readouterr().err
    assert (
        main(["reproduce", "--preset", "tiny", "--methods", "magic", "--out", str(tmp_path)]) == 2
    )
    assert "--methods" in capsys.readouterr().err


def test_seeds_name_runs_and_are_validated():
    from citi.errors import ConfigError
    from citi.reproduce.preset import ReproduceConfig

    config = ReproduceConfig(methods=["lora", "citi"], seeds=[7, 8])
    assert config.run_names("lora") == ["lora", "lora-seed8"]
    assert config.seed_of("lora") == 7 and config.seed_of("citi-seed8") == 8
    for bad in ([], [1, 1], ["a"]):
        with pytest.raises(ConfigError, match="seeds"):
            ReproduceConfig(seeds=bad)
    with pytest.raises(ConfigError, match="train.seed"):
        ReproduceConfig(train={"seed": 3})


def test_plan_trains_and_evaluates_every_seed(tmp_path, monkeypatch):
    import citi.train.loop as loop
    from citi.reproduce.pipeline import Pipeline
    from citi.reproduce.preset import ReproduceConfig

    config = ReproduceConfig(methods=["lora"], seeds=[1, 2], analyses=[])
    pipe = Pipeline(config, tmp_path)
    names = [name for name, _ in pipe.plan()]
    assert names == [
        "importance",
        "train-lora",
        "train-lora-seed2",
        "eval-base",
        "eval-lora",
        "eval-lora-seed2",
        "report",
    ]
    seen = {}

    class FakeTrainer:
        def __init__(self, cfg, run_dir):
            seen[Path(run_dir).name] = (cfg.method, cfg.seed)

        def run(self, resume, force=False):
            pass

    monkeypatch.setattr(loop, "Trainer", FakeTrainer)
    pipe.train("lora")
    pipe.train("lora-seed2")
    assert seen == {"lora": ("lora", 1), "lora-seed2": ("lora", 2)}


def test_noise_table_shows_means_and_seed_spread_without_verdicts(tmp_path):
    from citi.reproduce.preset import ReproduceConfig
    from citi.reproduce.report import noise_table

    values = {  # run -> (correctness, nll)
        "lora": (0.10, 1.00),
        "lora-seed2": (0.20, 1.02),
        "citi": (0.50, 1.01),
        "citi-seed2": (0.40, 1.03),
    }
    for run, (acc, nll) in values.items():
        tasks = {
            "apibank-l2": {"primary": "correctness", "metrics": {"correctness": acc}},
            "retention-math": {"primary": "nll", "metrics": {"nll": nll}},
        }
        path = tmp_path / "eval" / run / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"tasks": tasks}))
    config = ReproduceConfig(methods=["lora", "citi"], seeds=[1, 2])
    table = noise_table(tmp_path, config, ["apibank-l2", "retention-math"])
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    # accuracy: means 15.0 and 45.0 points, spread 10.0; no bold: the seed spread is no test
    assert "| apibank-l2 | 10.0 | 15.0 | 45.0 | +30.0 |" == rows["apibank-l2"]
    # NLL: means 1.010 and 1.020, spread 0.020
    assert "| retention-math | 0.020 | 1.010 | 1.020 | +0.010 |" == rows["retention-math"]


def test_judge_setting_reaches_the_evaluation(tmp_path, monkeypatch):
    import citi.evaluation.runner as runner
    from citi.errors import CitiError
    from citi.reproduce.pipeline import Pipeline
    from citi.reproduce.preset import ReproduceConfig

    with pytest.raises(CitiError, match="judge"):
        ReproduceConfig(judge={"url": "http://x/v1"})
    with pytest.raises(CitiError, match="--judge-url"):
        ReproduceConfig(judge={"url": "x", "model": "m"})
    seen = {}
    monkeypatch.setattr(runner, "evaluate", lambda *a, judge=None, **k: seen.update(j=judge))
    config = ReproduceConfig(judge={"url": "http://judge:8000/v1", "model": "m"}, analyses=[])
    Pipeline(config, tmp_path).evaluate("base")
    assert seen["j"].endpoint == "http://judge:8000/v1/chat/completions" and seen["j"].model == "m"


def test_tradeoff_figure_verdicts_variants_and_snapshots(tmp_path, data_dir):
    preset = {
        "name": "tradeoff",
        "model": "tiny-llama",
        "data_dir": str(data_dir),
        "precision": "fp32",
        "methods": ["ft", "lora", "citi-a16"],
        "variants": {"citi-a16": {"method": "citi", "molora": {"alpha": 16}}},
        "seeds": [1, 2],
        "decisive": False,
        "analyses": ["jaccard", "router"],
        "importance": {"samples": 4, "batch_size": 2, "max_length": 160},
        "train": {
            "tool_limit": 6,
            "mix_per_source": 2,
            "max_length": 160,
            "batch_size": 2,
            "grad_accum": 1,
            "save_every": 0,
            "snapshots": [0.5],
        },
        "eval": {
            "tasks": ["retention-tool", "drift-math", "leak-tool"],
            "limit": 2,
            "batch_size": 2,
            "router_examples": 2,
        },
        "snapshot_eval": {"tasks": ["retention-tool", "drift-math"], "limit": 2},
        "stats": {"x_star": 0.001, "resamples": 200},
    }
    path = tmp_path / "tradeoff.yaml"
    path.write_text(yaml.safe_dump(preset))
    out = tmp_path / "report"
    assert main(["reproduce", "--preset", str(path), "--out", str(out)]) == 0
    # The variant trained as CITI with its own alpha.
    config = yaml.safe_load((out / "runs" / "citi-a16-seed2" / "config.yaml").read_text())
    assert config["method"] == "citi" and config["molora"]["alpha"] == 16
    result = json.loads((out / "analysis" / "tradeoff.json").read_text())
    curve = result["curves"]["citi-a16"]
    assert curve["fractions"] == [0.0, 0.5, 1.0]
    assert all(len(v) == 2 for v in curve["drift"])  # both seeds at every point
    assert curve["drift"][0] == [0.0, 0.0] and all(d > 0 for d in curve["drift"][-1])
    claims = {r["claim"]: r["verdict"] for r in result["verdicts"]}
    assert "general drift of citi-a16 < lora's" in claims
    assert "general drift of citi-a16 < ft's, at equal tool learning (x* = 0.001)" in claims
    assert "forgetting shows: ft-seed2 leaks tool calls into general answers" in claims
    assert set(claims.values()) <= {"holds", "does not hold", "inconclusive"}
    report = (out / "report.md").read_text()
    assert "analysis/tradeoff.png" in report and "(too small to decide)" in report
    assert (out / "analysis" / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"


def _comparable(out: Path) -> dict:
    """Every results.json and the report, with timings, paths and path-derived keys masked."""

    def mask(x):
        if isinstance(x, dict):
            return {k: mask(v) for k, v in x.items() if k not in ("seconds", "key", "adapter")}
        if isinstance(x, list):
            return [mask(v) for v in x]
        return x.replace(str(out), "OUT") if isinstance(x, str) else x

    found = {
        str(p.relative_to(out)): mask(json.loads(p.read_text()))
        for p in sorted(out.glob("eval/*/results.json"))
    }
    report = (out / "report.md").read_text().replace(str(out), "OUT")
    head, _, rest = report.partition("## Time per step")
    found["report"] = head + rest.partition("## Settings")[2]
    return found


_RESUME_PRESET = {
    "name": "resume",
    "model": "tiny-llama",
    "precision": "fp32",
    "methods": ["ft", "citi"],
    "analyses": ["jaccard", "router", "errors"],
    "importance": {"samples": 4, "batch_size": 2, "max_length": 160},
    "train": {
        "tool_limit": 8,
        "mix_per_source": 2,
        "max_length": 160,
        "batch_size": 2,
        "grad_accum": 1,
        "save_every": 1,
    },
    "eval": {
        "tasks": ["apibank-l2", "triviaqa", "retention-math", "drift-math"],
        "limit": 3,
        "batch_size": 2,
        "router_examples": 2,
    },
}


def _reproduce_cmd(tmp: Path, data_dir) -> tuple[list[str], dict]:
    import os
    import sys

    path = tmp / "resume.yaml"
    path.write_text(yaml.safe_dump({**_RESUME_PRESET, "data_dir": str(data_dir)}))
    env = {**os.environ, "CITI_CACHE": str(tmp / "cache")}
    return [sys.executable, "-m", "citi.cli.main", "reproduce", "--preset", str(path), "--out"], env


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir):
    import subprocess

    tmp = tmp_path_factory.mktemp("full")
    cmd, env = _reproduce_cmd(tmp, data_dir)
    subprocess.run([*cmd, str(tmp / "out")], env=env, check=True, capture_output=True, timeout=900)
    return _comparable(tmp / "out")


@pytest.mark.parametrize("kill_when", ["runs/citi/checkpoint", "eval/ft/tasks"])
def test_reproduce_killed_and_resumed_gives_identical_results(
    tmp_path, data_dir, uninterrupted, kill_when
):
    import os
    import signal
    import subprocess
    import time

    cmd, env = _reproduce_cmd(tmp_path, data_dir)
    cut = tmp_path / "out"
    proc = subprocess.Popen(
        [*cmd, str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600
    while not (cut / kill_when).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the kill point"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([*cmd, str(cut)], env=env, check=True, capture_output=True, timeout=900)
    assert _comparable(cut) == uninterrupted


def test_alpha_sweep_picks_the_lowest_validation_loss_for_swept_variants(tmp_path, data_dir):
    preset = {
        "name": "sweep",
        "model": "tiny-llama",
        "data_dir": str(data_dir),
        "precision": "fp32",
        "methods": ["citi-sw"],
        "variants": {"citi-sw": {"method": "rp-mi", "molora": {"alpha": "swept"}}},
        "sweep": {"alpha": [0.5, 64], "method": "rp-mi", "train": {"tool_limit": 4}},
        "analyses": [],
        "importance": {"samples": 4, "batch_size": 2, "max_length": 160},
        "train": {
            "tool_limit": 6,
            "validation": 3,
            "mix_per_source": 2,
            "max_length": 160,
            "batch_size": 2,
            "grad_accum": 1,
            "save_every": 0,
        },
        "eval": {"tasks": ["retention-tool"], "limit": 2, "batch_size": 2},
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(preset))
    out = tmp_path / "report"
    assert main(["reproduce", "--preset", str(path), "--out", str(out)]) == 0
    sweep = json.loads((out / "analysis" / "sweep.json").read_text())
    losses = {c["alpha"]: c["validation_loss"] for c in sweep["candidates"]}
    assert set(losses) == {0.5, 64} and sweep["chosen"] == min(losses, key=losses.get)
    # Every candidate held out the same validation split and trained on the sweep's own limit.
    for alpha in ("0.5", "64"):
        cfg = yaml.safe_load((out / "sweep" / f"alpha-{alpha}" / "config.yaml").read_text())
        assert cfg["validation"] == 3 and cfg["tool_limit"] == 4 and cfg["method"] == "rp-mi"
    config = yaml.safe_load((out / "runs" / "citi-sw" / "config.yaml").read_text())
    assert config["molora"]["alpha"] == sweep["chosen"] and config["tool_limit"] == 6
    assert "## MOLoRA alpha sweep" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"sweep": {}}, "needs a sweep: section"),
        ({"sweep": {"alpha": [2]}}, "sweep.alpha"),
        ({"sweep": {"alpha": [2, 8], "metod": "rp-mi"}}, "unknown key(s) metod"),
        ({"sweep": {"alpha": [2, 8], "method": "ft"}}, "sweep.method"),
        ({"sweep": {"alpha": [2, 8]}, "train": {}}, "train.validation"),
    ],
)
def test_sweep_settings_are_validated(change, needle):
    from citi.errors import ConfigError
    from citi.reproduce.preset import ReproduceConfig

    values = {
        "methods": ["citi-sw"],
        "variants": {"citi-sw": {"method": "citi", "molora": {"alpha": "swept"}}},
        "train": {"validation": 8},
        **change,
    }
    with pytest.raises(ConfigError, match=re.escape(needle)):
        ReproduceConfig(**values)


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"train": {"batch_szie": 4}}, "train: unknown key(s) batch_szie"),
        ({"train": {"lr": {"lora": "x"}}}, "train: --lr"),
        ({"importance": {"sampels": 3}}, "importance: unknown key(s) sampels"),
        ({"eval": {"tasks": [], "batch_szie": 4}}, "eval: unknown key(s) batch_szie"),
        ({"snapshot_eval": {"limt": 4}}, "snapshot_eval: unknown key(s) limt"),
        ({"icc": {"sample": 3}}, "icc: unknown key(s) sample"),
        ({"replace": {"setings": []}}, "replace: unknown key(s) setings"),
        ({"sweep": {"alpah": [2, 8]}}, "sweep: unknown key(s) alpah"),
        (
            {"methods": ["v"], "variants": {"v": {"method": "citi", "molora": {"alpah": 3}}}},
            "variants.v: molora",
        ),
    ],
)
def test_a_misspelt_key_in_any_preset_section_fails_before_any_work(
    tmp_path, monkeypatch, capsys, values, needle
):
    import citi.importance.run as run_mod

    def boom(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(run_mod, "run_importance", boom)
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump({"model": "tiny-llama", **values}))
    out = tmp_path / "out"
    assert main(["reproduce", "--preset", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (out / "steps.json").exists()


def _finished_reproduction(tmp_path, data_dir) -> tuple[Path, Path, dict]:
    """An --out as a finished `citi reproduce` of the test preset leaves it (without running)."""
    from citi.config import save_config
    from citi.reproduce.pipeline import Pipeline

    preset, out = _preset(tmp_path, data_dir), tmp_path / "report"
    config = load_preset(str(preset))
    out.mkdir()
    save_config(config, out / "preset.yaml")
    steps = {name: {"done": True, "seconds": 1.0} for name, _ in Pipeline(config, out).plan()}
    (out / "steps.json").write_text(json.dumps(steps))
    (out / "report.md").write_text("# the old report\n")
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    return preset, out, files


@pytest.mark.parametrize(
    "change, field",
    [
        (["--model", "tiny-phi3"], "model: 'tiny-llama' -> 'tiny-phi3'"),
        (["--methods", "ft,citi"], "methods:"),
        (["--precision", "bf16"], "precision: 'auto' -> 'bf16'"),
        ({"eval": {"tasks": ["gsm8k"], "limit": 4}}, "eval:"),
    ],
)
def test_a_rerun_with_other_settings_is_refused_naming_them(
    tmp_path, data_dir, capsys, change, field
):
    preset, out, files = _finished_reproduction(tmp_path, data_dir)
    argv = ["reproduce", "--preset", str(preset), "--out", str(out)]
    if isinstance(change, dict):  # the preset file itself edited
        preset.write_text(yaml.safe_dump({**yaml.safe_load(preset.read_text()), **change}))
    else:
        argv += change
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(out) in err and field in err and "--force" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files  # left as it was


def test_a_rerun_with_the_same_settings_or_force_continues(tmp_path, data_dir, capsys):
    preset, out, files = _finished_reproduction(tmp_path, data_dir)
    argv = ["reproduce", "--preset", str(preset), "--out", str(out)]
    assert main(argv) == 0  # same settings: every step done, nothing refused
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    assert main([*argv, "--model", "tiny-phi3", "--force"]) == 0
    assert yaml.safe_load((out / "preset.yaml").read_text())["model"] == "tiny-phi3"
