"""``citi lm-eval``: lm-eval's CLI with the ``citi`` model and citi's offline task YAMLs."""

import json

import pytest
import torch

from citi.adapters import load_adapter
from citi.cli.main import main
from citi.lm_eval import register_model, render_tasks
from citi.models import load_model
from citi.train.loop import Trainer
from tests.helpers import small_config


@pytest.fixture(scope="module")
def citi_run(tmp_path_factory, data_dir, selection_file):
    run = tmp_path_factory.mktemp("citi") / "run"
    config = small_config(data_dir, selection_file, lr={"mi": 1e-2, "uco": 1e-3})
    Trainer(config, run).run()
    return run


def _lm_eval(data_dir, out, model_args, tasks):
    argv = ["lm-eval", "--data-dir", str(data_dir), "--model", "citi"]
    argv += ["--model_args", model_args, "--tasks", tasks, "--limit", "2", "--device", "cpu"]
    argv += ["--batch_size", "2", "--gen_kwargs", "max_gen_toks=4", "--output_path", str(out)]
    assert main(argv) == 0
    (path,) = out.rglob("results_*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("with_adapter", [False, True])
def test_lm_eval_runs_offline_tasks_on_a_citi_model(data_dir, citi_run, tmp_path, with_adapter):
    model_args = "pretrained=tiny-llama,precision=fp32"
    if with_adapter:
        model_args += f",adapter={citi_run}"
    results = _lm_eval(data_dir, tmp_path / "out", model_args, "gsm8k_offline,ifeval_offline")
    assert set(results["results"]["gsm8k_offline"]) >= {
        "exact_match,strict-match",
        "exact_match,flexible-extract",
    }
    assert set(results["results"]["ifeval_offline"]) >= {
        "prompt_level_strict_acc,none",
        "inst_level_loose_acc,none",
    }
    assert results["n-samples"]["gsm8k_offline"]["effective"] == 2
    assert ("adapter" in results["config"]["model_args"]) == with_adapter


def test_the_citi_lm_is_citis_model_with_its_adapter(citi_run):
    from lm_eval.api.registry import get_model

    register_model()
    lm = get_model("citi")(
        pretrained="tiny-llama", adapter=str(citi_run), precision="fp32", device="cpu"
    )
    reference = load_model("tiny-llama", device="cpu").model.eval()
    load_adapter(reference, citi_run / "final")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        torch.testing.assert_close(lm.model(ids).logits, reference(ids).logits, rtol=0, atol=0)


def test_task_templates_render_with_the_data_directory(data_dir, tmp_path):
    names = render_tasks(tmp_path, data_dir)
    expected = {"gsm8k_offline", "gsm8k_citi_prompt", "ifeval_offline", "triviaqa_heldout"}
    assert set(names) == expected
    text = (tmp_path / "gsm8k_offline.yaml").read_text()
    assert str((data_dir / "gsm8k" / "test.jsonl").resolve()) in text and "$" not in text
    heldout = (tmp_path / "triviaqa_heldout.jsonl").read_text().splitlines()
    assert heldout and all("aliases" in json.loads(line)["answer"] for line in heldout)
    # a data directory without GSM8K: its tasks are left out, the others still render
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "r").mkdir()
    assert "gsm8k_offline" not in render_tasks(tmp_path / "r", empty)


def test_unknown_lm_eval_arguments_only_pass_through_lm_eval(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--no-model", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_importing_citi_lm_eval_registers_the_model_for_simple_evaluate(data_dir, tmp_path):
    import subprocess
    import sys

    # A fresh interpreter: nothing but the import has registered `citi` there.
    code = (
        "import sys, lm_eval\n"
        "from lm_eval.tasks import TaskManager\n"
        "import citi.lm_eval\n"
        "citi.lm_eval.render_tasks(__import__('pathlib').Path(sys.argv[1]), sys.argv[2])\n"
        "out = lm_eval.simple_evaluate(model='citi', model_args='pretrained=tiny-llama,"
        "precision=fp32,device=cpu', tasks=['gsm8k_offline'], limit=1,"
        " task_manager=TaskManager(include_path=sys.argv[1]), gen_kwargs='max_gen_toks=2')\n"
        "print('effective', out['n-samples']['gsm8k_offline']['effective'])\n"
    )
    (tmp_path / "tasks").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "tasks"), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "effective 1" in result.stdout


@pytest.fixture(autouse=True)
def _lm_eval_logs_to_the_process_stderr():
    # lm-eval binds its log handler to sys.stderr once per process: under pytest that is one
    # test's captured stream, closed in later tests ("--- Logging error ---" tracebacks).
    import logging
    import sys

    for handler in logging.getLogger("lm_eval").handlers:
        if type(handler) is logging.StreamHandler:
            handler.stream = sys.__stderr__  # setStream would flush the closed one


def _error_line(capsys, rc, needle):
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    (line,) = [x for x in err.splitlines() if x.startswith("citi: error:")]
    assert needle in line, line


BASE = ["--model", "citi", "--model_args", "pretrained=tiny-llama", "--limit", "1"]


def test_lm_eval_refuses_unknown_and_missing_tasks(data_dir, capsys):
    argv = ["lm-eval", "--data-dir", str(data_dir), *BASE, "--device", "cpu"]
    _error_line(capsys, main([*argv, "--tasks", "no_such_task"]), "--tasks: no_such_task: no such")
    _error_line(capsys, main(argv), "--tasks: no task given")


def test_lm_eval_names_a_missing_data_directory_and_missing_data(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    argv = ["lm-eval", "--data-dir", str(missing), *BASE, "--tasks", "gsm8k_offline"]
    _error_line(capsys, main(argv), f"--data-dir: {missing} is not a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["lm-eval", "--data-dir", str(empty), *BASE, "--tasks", "gsm8k_offline"]
    _error_line(capsys, main(argv), f"gsm8k, gsm8k-test, not found in the data directory {empty}")


@pytest.mark.parametrize("name", ["out", "results.json"])
def test_lm_eval_output_path_under_a_file_is_refused_before_evaluating(
    data_dir, tmp_path, capsys, name
):
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = ["lm-eval", "--data-dir", str(data_dir), *BASE, "--tasks", "gsm8k_offline"]
    rc = main([*argv, "--output_path", str(afile / name)])
    _error_line(capsys, rc, f"--output_path: {afile} is a file")
    assert afile.read_text() == "x" and sorted(tmp_path.iterdir()) == [afile]


def test_lm_eval_device_is_checked(data_dir, capsys):
    argv = ["lm-eval", "--data-dir", str(data_dir), *BASE, "--tasks", "gsm8k_offline"]
    _error_line(capsys, main([*argv, "--device", "gpu0"]), "--device: unknown device 'gpu0'")
