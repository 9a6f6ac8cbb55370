"""citi against the tools a user would otherwise pick, on the same jobs, in one run.

    .venv/bin/python benchmarks/peers.py [--steps 64] [--prompts 64] [--precision bf16]

Needs TRL (`pip install -e '.[bench]'`; `make install` has it). Each job runs in a fresh
process, one after another, so that peak memory is the job's own and accelerate's process-wide
mixed-precision state does not leak from one job into the next.

Training (SmolLM2-135M, API-Bank training data as `citi train` encodes it: the chat template,
labels on the assistant's answer only, --max-length; batch, gradient accumulation, optimizer
steps and seed the same for all; one epoch over steps x batch x grad-accum examples, taken in
citi's seeded order by both tools, so the same micro-batches are seen in the same order):
  citi-lora  `citi train --method lora` (PEFT LoRA r16 alpha 16 on every linear component,
             AdamW lr 2e-4, cosine schedule with 10% warm-up, gradient clipping at 1.0), run
             in-process through citi.train.loop.Trainer
  trl-lora   TRL's SFTTrainer with the same PEFT LoRA, optimizer, schedule and clipping, fed
             the same token ids and labels (its data preparation and shuffling switched off)
  citi-mi    CITI's MOLoRA stage (MI: 4 experts r8 and routers on a seeded random 20% of the
             components, the routing loss on) on the same examples, after a one-micro-batch RP
             stage; only the MI stage is timed
tokens/s = non-padding tokens trained on / seconds of the training loop (model loading and
saving excluded); peak memory = the process's peak RSS on a CPU (everything the job held:
model, optimizer, activations, libraries), torch.cuda.max_memory_allocated on CUDA. The
first-step loss of the two LoRA jobs must agree (same data, same masking, LoRA B = 0); their
final loss (mean of the last quarter of steps) agrees within noise (different LoRA A draws).

Evaluation: the first --prompts GSM8K test and --prompts API-Bank level-2 prompts, rendered as
`citi eval` renders them, greedy with each task's max new tokens and stop strings, batch
--batch, the model loaded as `citi eval --precision P` loads it:
  citi-gen   citi.evaluation.generation.generate (what `citi eval` runs)
  lmeval-gen lm-eval's HF backend (HFLM.generate_until, the `citi` model of `citi lm-eval`)
tokens/s = generated tokens (the outputs, re-tokenised, the same way for both) / seconds.

With --grad-accum > 1 the jobs still see the same tokens, but the losses are normalised
differently: citi averages the micro-batches' mean token losses, transformers' Trainer divides
the summed token loss by the label tokens of the whole optimizer step.

Opt-in jobs (--jobs): citi-lora-compile and citi-gen-compile, the same citi jobs under
--compile, printed as compiled / eager ratios with whether every loss or answer was identical
(use --precision fp32 for that check). --repeats N interleaves N runs of every job and keeps the
median; --job-timeout S stops a job that runs longer and says so.

Targets (ratios of this one run): citi-lora / trl-lora tokens/s >= 1.0 and peak memory <= 1.0;
citi-mi / trl-lora tokens/s >= 1.3; citi-gen / lmeval-gen tokens/s >= 1.2; compiled / eager
>= 1.15 for --compile to be on by default.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = ("citi-lora", "trl-lora", "citi-mi", "citi-gen", "lmeval-gen")
# Opt-in (--jobs): the same citi jobs under --compile, for the compiled / eager ratios.
COMPILED = ("citi-lora-compile", "citi-gen-compile")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data-dir", default=None, help="citi's data directory (CITI_DATA_DIR)")
    p.add_argument("--steps", type=int, default=64, help="optimizer steps of each training job")
    p.add_argument("--batch-size", type=int, default=2, help="training micro-batch (cpu preset)")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--prompts", type=int, default=64, help="per evaluation dataset")
    p.add_argument("--batch", type=int, default=8, help="generation batch size")
    p.add_argument("--max-new-tokens", type=int, default=None, help="cap each task's own")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--jobs", default=",".join(JOBS), help="a comma-separated subset")
    p.add_argument(
        "--job-timeout", type=float, default=None, help="stop a job after this many seconds"
    )
    p.add_argument(
        "--repeats", type=int, default=1, help="interleaved runs of every job; the median is kept"
    )
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--worker", choices=JOBS + COMPILED, help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _device(args) -> str:
    import torch

    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def _peak_bytes(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


# -- training ----------------------------------------------------------------------------------
def _train_config(args, method: str, workdir: Path, **kw):
    from citi.train.config import TrainConfig

    return TrainConfig(
        method=method,
        model=args.model,
        data_dir=args.data_dir,
        tool_limit=args.steps * args.batch_size * args.grad_accum,
        mix=False,
        max_length=args.max_length,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        seed=args.seed,
        save_every=0,
        precision=args.precision,
        device=args.device,
        **kw,
    )


def _citi_log(out: Path, stage: str) -> dict:
    """The stage's per-step losses, and its tokens/s after the first two steps (where a compiled
    model has compiled: the steady rate of a long run)."""
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if r["stage"] == stage]
    later = records[2:] or records
    seconds = sum(r["tokens"] / r["tokens_per_s"] for r in later)
    return {
        "losses": [r["loss"] for r in records],
        "steady_tokens_per_s": sum(r["tokens"] for r in later) / seconds,
    }


def citi_lora(args, workdir: Path, compile: bool = False) -> dict:
    from citi.train.loop import Trainer

    config = _train_config(args, "lora", workdir, epochs={"lora": 1}, compile=compile)
    summary = Trainer(config, workdir / "run").run()
    return {
        "tokens": summary["data"]["tokens"],
        "seconds": summary["stage_seconds"]["lora"],
        **_citi_log(workdir / "run", "lora"),
        "padded_share": summary["padded_share"]["lora"],
    }


def write_selection(args, path: Path) -> None:
    """MOLoRA on a seeded random 20% of the components (the paper's ratio; which ones barely
    changes the cost), written by the parent so the job's peak memory holds one model only."""
    from citi.components import list_components
    from citi.models import load_model

    names = [c.name for c in list_components(load_model(args.model, device="cpu").model)]
    chosen = random.Random(args.seed).sample(sorted(names), round(0.2 * len(names)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"molora": chosen, "uco": []}))


def citi_mi(args, workdir: Path) -> dict:
    from citi.train.loop import Trainer

    selection = workdir.parent / "selection.json"  # written by the parent
    # RP for one micro-batch (it is not what is compared), then one epoch of MI.
    n = args.steps * args.batch_size * args.grad_accum
    rp_epochs = args.batch_size / n
    config = _train_config(
        args, "rp-mi", workdir, selection=str(selection), epochs={"rp": rp_epochs, "mi": 1}
    )
    summary = Trainer(config, workdir / "run").run()
    return {
        "tokens": summary["data"]["tokens"],
        "seconds": summary["stage_seconds"]["mi"],
        **_citi_log(workdir / "run", "mi"),
        "padded_share": summary["padded_share"]["mi"],
    }


def trl_lora(args, workdir: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from torch.utils.data import SequentialSampler
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from citi.models import load_model
    from citi.train.batching import epoch_order
    from citi.train.data import build_training_data

    device = _device(args)
    config = _train_config(args, "lora", workdir, epochs={"lora": 1})
    loaded = load_model(args.model, dtype="float32", device=device)
    encoded, summary = build_training_data(config, loaded.tokenizer)
    # citi's order for this stage and epoch; TRL then reads the examples in sequence.
    order = epoch_order(len(encoded), config.seed, 0, 0, config.batch_size)
    rows = [encoded[i] for i in order]
    data = Dataset.from_dict(
        {"input_ids": [e.input_ids for e in rows], "labels": [e.labels for e in rows]}
    )

    class InOrder(SFTTrainer):
        def _get_train_sampler(self, *a, **kw):
            return SequentialSampler(self.train_dataset)

    steps = len(rows) // (args.batch_size * args.grad_accum)
    sft = SFTConfig(
        output_dir=str(workdir / "trl-lora"),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        max_steps=steps,
        learning_rate=2e-4,  # citi's LoRA stage
        lr_scheduler_type="cosine",
        warmup_steps=round(config.warmup_ratio * steps),
        weight_decay=0.0,
        max_grad_norm=1.0,
        optim="adamw_torch",
        bf16=args.precision == "bf16",
        fp16=False,
        gradient_checkpointing=False,  # TRL's default is True; citi's is off
        max_length=None,  # already cut at --max-length by citi's encoding
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=args.seed,
        data_seed=args.seed,
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
    )
    lora = LoraConfig(
        r=16, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", bias="none"
    )
    set_seed(args.seed)
    trainer = InOrder(
        model=loaded.model,
        args=sft,
        train_dataset=data,
        processing_class=loaded.tokenizer,
        peft_config=lora,
    )
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"tokens": summary["tokens"], "seconds": seconds, "losses": losses}


# -- evaluation --------------------------------------------------------------------------------
def _eval_requests(args, tokenizer) -> list[tuple[str, int, tuple[str, ...]]]:
    """(rendered prompt, max new tokens, stop strings) of each prompt, as `citi eval` makes them."""
    from citi.data.render import render_prompt
    from citi.evaluation.harness import load_task_examples
    from citi.evaluation.registry import get_task

    requests = []
    for name in ("gsm8k", "apibank-l2"):
        task = get_task(name)
        new = min(task.max_new_tokens, args.max_new_tokens or task.max_new_tokens)
        for ex in load_task_examples(task, args.data_dir, args.prompts):
            requests.append((render_prompt(tokenizer, task.prompt(ex)), new, task.stop))
    return requests


def _load_for_eval(args):
    from citi.adapters import load_for_eval

    return load_for_eval(args.model, None, "auto", _device(args), args.precision)


def _generated_tokens(tokenizer, outputs: list[str]) -> int:
    return sum(len(ids) for ids in tokenizer(outputs, add_special_tokens=False)["input_ids"])


def citi_gen(args, workdir: Path, compile: bool = False) -> dict:
    from citi.evaluation.generation import generate
    from citi.models.compiled import compile_in_place

    loaded = _load_for_eval(args)
    if compile:  # what `citi eval --compile` does
        compile_in_place(loaded.model)
    requests = _eval_requests(args, loaded.tokenizer)
    outputs = []
    start = time.perf_counter()
    # One call per (max new tokens, stop) group: one per task, as `citi eval` runs them.
    for key in dict.fromkeys((new, stop) for _, new, stop in requests):
        prompts = [p for p, new, stop in requests if (new, stop) == key]
        outputs += generate(loaded.model, loaded.tokenizer, prompts, key[0], key[1], args.batch)
    seconds = time.perf_counter() - start
    return _gen_result(loaded.tokenizer, outputs, seconds, workdir / "outputs.json")


def lmeval_gen(args, workdir: Path) -> dict:
    from lm_eval.api.instance import Instance
    from lm_eval.api.registry import get_model

    from citi.lm_eval import register_model

    register_model()
    lm = get_model("citi")(
        pretrained=args.model,
        precision=args.precision,
        device=_device(args),
        batch_size=args.batch,
    )
    requests = _eval_requests(args, lm.tokenizer)
    instances = [
        Instance(
            request_type="generate_until",
            doc={},
            arguments=(prompt, {"until": list(stop), "max_gen_toks": new, "do_sample": False}),
            idx=i,
        )
        for i, (prompt, new, stop) in enumerate(requests)
    ]
    start = time.perf_counter()
    outputs = lm.generate_until(instances, disable_tqdm=True)
    seconds = time.perf_counter() - start
    return _gen_result(lm.tokenizer, outputs, seconds, workdir / "outputs.json")


def _gen_result(tokenizer, outputs: list[str], seconds: float, keep: Path) -> dict:
    keep.write_text(json.dumps(outputs))  # compared by the parent: same prompts, same answers?
    return {
        "prompts": len(outputs),
        "tokens": _generated_tokens(tokenizer, outputs),
        "seconds": seconds,
        "outputs": str(keep),
    }


WORKERS = {
    "citi-lora": citi_lora,
    "trl-lora": trl_lora,
    "citi-mi": citi_mi,
    "citi-gen": citi_gen,
    "lmeval-gen": lmeval_gen,
    "citi-lora-compile": lambda args, workdir: citi_lora(args, workdir, compile=True),
    "citi-gen-compile": lambda args, workdir: citi_gen(args, workdir, compile=True),
}


def worker(args) -> None:
    import torch

    torch.manual_seed(args.seed)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    result = WORKERS[args.worker](args, Path(args.workdir))
    result["peak_bytes"] = _peak_bytes(_device(args))
    print(json.dumps(result))


# -- the run -----------------------------------------------------------------------------------
def run_job(job: str, argv: list[str], workdir: Path, timeout: float | None) -> dict | None:
    """The job's result, or None when it ran past ``timeout`` seconds (then it is stopped)."""
    cmd = [sys.executable, __file__, *argv, "--worker", job, "--workdir", str(workdir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"peers: job {job} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tail_mean(losses: list[float]) -> float:
    tail = losses[-max(1, len(losses) // 4) :]
    return sum(tail) / len(tail)


def _ratio(name: str, value: float, target: str) -> str:
    op, bound = target.split()
    met = value >= float(bound) if op == ">=" else value <= float(bound)
    return f"  {name:<44} {value:6.2f}   target {target:<7} {'met' if met else 'NOT MET'}"


def report(results: dict, args) -> list[str]:
    mib = 2**20
    lines = []
    for job, r in results.items():
        if "losses" in r:
            lines.append(
                f"{job:<17} {r['tokens'] / r['seconds']:8.1f} tokens/s  {r['seconds']:7.1f} s  "
                f"peak {r['peak_bytes'] / mib:7.0f} MiB  loss first {r['losses'][0]:.4f} "
                f"last-quarter {_tail_mean(r['losses']):.4f}"
                + (f"  padded {r['padded_share']:.1%}" if "padded_share" in r else "")
                + (f"  runs {r['all_seconds']} s" if len(r.get("all_seconds", [])) > 1 else "")
            )
        else:
            lines.append(
                f"{job:<17} {r['tokens'] / r['seconds']:8.1f} tokens/s  "
                f"{r['prompts'] / r['seconds']:6.2f} prompts/s  {r['seconds']:7.1f} s  "
                f"peak {r['peak_bytes'] / mib:7.0f} MiB  {r['tokens']} tokens"
                + (f"  runs {r['all_seconds']} s" if len(r.get("all_seconds", [])) > 1 else "")
            )

    def tps(job):
        return results[job]["tokens"] / results[job]["seconds"]

    lines.append("ratios (one run):")
    if {"citi-lora", "trl-lora"} <= results.keys():
        a, b = results["citi-lora"], results["trl-lora"]
        lines.append(
            _ratio("citi lora / TRL lora, tokens/s", tps("citi-lora") / tps("trl-lora"), ">= 1.0")
        )
        lines.append(
            _ratio("citi lora / TRL lora, peak memory", a["peak_bytes"] / b["peak_bytes"], "<= 1.0")
        )
        lines.append(
            f"  LoRA loss, citi vs TRL: first step {a['losses'][0]:.4f} vs {b['losses'][0]:.4f}, "
            f"last quarter {_tail_mean(a['losses']):.4f} vs {_tail_mean(b['losses']):.4f}"
        )
    if {"citi-mi", "trl-lora"} <= results.keys():
        lines.append(
            _ratio(
                "citi MOLoRA (MI) / TRL lora, tokens/s", tps("citi-mi") / tps("trl-lora"), ">= 1.3"
            )
        )
        lines.append(
            f"  {'citi MOLoRA (MI) / TRL lora, peak memory':<44} "
            f"{results['citi-mi']['peak_bytes'] / results['trl-lora']['peak_bytes']:6.2f}"
        )
    if {"citi-lora", "citi-lora-compile"} <= results.keys():
        a, b = results["citi-lora-compile"], results["citi-lora"]
        lines.append(
            _ratio(
                "citi lora --compile / eager, tokens/s",
                tps("citi-lora-compile") / tps("citi-lora"),
                ">= 1.15",
            )
        )
        lines.append(
            f"  {'  the same after the first two steps':<44} "
            f"{a['steady_tokens_per_s'] / b['steady_tokens_per_s']:6.2f}"
        )
        same = a["losses"] == b["losses"]
        lines.append(f"  identical losses at every step: {same}")
    if {"citi-gen", "citi-gen-compile"} <= results.keys():
        lines.append(
            _ratio(
                "citi eval --compile / eager, tokens/s",
                tps("citi-gen-compile") / tps("citi-gen"),
                ">= 1.15",
            )
        )
        lines.append(
            f"  identical generations: {_same_outputs(results, 'citi-gen-compile', 'citi-gen')}"
        )
    if {"citi-gen", "lmeval-gen"} <= results.keys():
        lines.append(
            _ratio(
                "citi eval / lm-eval HF, tokens/s", tps("citi-gen") / tps("lmeval-gen"), ">= 1.2"
            )
        )
        lines.append(f"  identical generations: {_same_outputs(results, 'citi-gen', 'lmeval-gen')}")
    return lines


def _same_outputs(results: dict, a: str, b: str) -> str:
    x = json.loads(Path(results[a]["outputs"]).read_text())
    y = json.loads(Path(results[b]["outputs"]).read_text())
    return f"{sum(p == q for p, q in zip(x, y, strict=True))} of {len(x)}"


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = sorted(set(jobs) - set(JOBS + COMPILED))
    if unknown:
        known = ", ".join(JOBS + COMPILED)
        raise SystemExit(f"peers: error: --jobs: unknown {', '.join(unknown)}; known: {known}")
    passed = _drop_values(argv, ("--json", "--jobs", "--repeats", "--job-timeout"))
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="citi-peers-") as tmp:
        if "citi-mi" in jobs:
            write_selection(args, Path(tmp) / "selection.json")
        runs = {job: [] for job in jobs}
        timed_out = set()
        # Interleaved repetitions: drift in the machine's load hits every job alike.
        for rep in range(args.repeats):
            for job in jobs:
                print(f"running {job} ({rep + 1}/{args.repeats}) ...", file=sys.stderr, flush=True)
                done = run_job(job, passed, Path(tmp) / f"{job}-{rep}", args.job_timeout)
                if done is None:
                    timed_out.add(job)
                    continue
                runs[job].append(done)
        results = {job: _median_run(r) for job, r in runs.items() if r}
        lines = report(results, args)
        lines += [
            f"  {job}: stopped after --job-timeout {args.job_timeout:g} s (every repetition "
            f"that did not finish is left out)"
            for job in sorted(timed_out)
        ]
    load = f"{load_before} at the start, {_load()} at the end"
    print(f"peers.py {' '.join(argv)}  (load average {load})")
    print("\n".join(lines))
    if args.json:
        from citi.io import write_json_atomic

        write_json_atomic(args.json, {"argv": argv, "load": load, "results": results})


def _load() -> str:
    """The 1, 5 and 15-minute load averages (the machine is shared: they go with the numbers)."""
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def _median_run(runs: list[dict]) -> dict:
    """The repetition of median time (whole, so its losses and outputs go with it), with the
    highest peak memory of all and every repetition's seconds."""
    chosen = dict(sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2])
    chosen["peak_bytes"] = max(r["peak_bytes"] for r in runs)
    chosen["all_seconds"] = [round(r["seconds"], 1) for r in runs]
    return chosen


def _drop_values(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """argv without ``options`` and their values (the parent's own business)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in options:
            skip = True
            continue
        if any(a.startswith(o + "=") for o in options):
            continue
        out.append(a)
    return out


if __name__ == "__main__":
    main()
