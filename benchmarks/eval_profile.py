"""Where `citi eval`'s generation time goes: torch.profiler over one batch of API-Bank prompts.

    .venv/bin/python benchmarks/eval_profile.py [--prompts 8] [--new-tokens 32]

SmolLM2 loaded as `citi eval --precision bf16` loads it, one warm-up call, then one profiled
call of citi.evaluation.generation.generate on the first --prompts API-Bank level-2 prompts
(the task's stop strings). Prints the wall time and the operators with the largest share of
the profiled CPU time: when the model's own kernels (matmuls, attention, elementwise) hold
nearly all of it, nothing around `generate` can make generation much faster.
"""

from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile

from citi.adapters import load_for_eval
from citi.data.render import render_prompt
from citi.evaluation.generation import generate
from citi.evaluation.harness import load_task_examples
from citi.evaluation.registry import get_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--top", type=int, default=10)
    args = p.parse_args()
    loaded = load_for_eval(args.model, None, "auto", "cpu", "bf16")
    task = get_task("apibank-l2")
    examples = load_task_examples(task, args.data_dir, args.prompts)
    prompts = [render_prompt(loaded.tokenizer, task.prompt(e)) for e in examples]
    generate(loaded.model, loaded.tokenizer, prompts[:2], 4, task.stop, len(prompts))  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        generate(loaded.model, loaded.tokenizer, prompts, args.new_tokens, task.stop, len(prompts))
        wall = time.perf_counter() - start
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ops)
    print(f"wall {wall:.2f} s, profiled CPU time {total / 1e6:.2f} s")
    for e in ops[: args.top]:
        print(f"  {e.key:<52} {e.self_cpu_time_total / total:6.1%}  {e.count} calls")


if __name__ == "__main__":
    main()
