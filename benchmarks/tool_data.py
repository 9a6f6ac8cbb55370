"""Cost of reading a user's tool data relative to a bare chat-template render + tokenise.

    .venv/bin/python benchmarks/tool_data.py [--rows 10000] [--model smollm2-135m-instruct]
                                             [--data FILE] [--max-length 4096]

Rows: the glaive function-calling demo file (LLaMA-Factory ShareGPT, $CITI_DATA_DIR/glaive_toolcall/
glaive_toolcall_en_demo.json, or --data) repeated up to --rows, written to one temporary .json.

- citi: ``load_conversations`` (read the file, recognise the format, convert and check every row)
  + ``to_examples`` + ``encode_all`` (render with citi's template, find every assistant turn's
  span, tokenise, label) — what ``citi train --tool-data`` does before training.
- bare: ``tokenizer.apply_chat_template(messages, tools=..., chat_template=T, tokenize=False)`` and
  ``tokenizer(text)`` of the same rows, already converted (conversion not timed), with the same
  template T (SmolLM2's own cannot render calls: T is citi's tool prelude + it, run by Jinja).
- floor (for reference): the same, but the rows already rewritten the Hermes way (not timed) and
  rendered by the model's own template: the least any render + tokenise of these rows costs.

All run once, side by side in one process, after a short warm-up. Target: citi / bare <= 1.3.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from citi.data.chat_template import chat_template_for, hermes_messages
from citi.data.conversations import load_conversations, to_examples
from citi.data.labels import EncodeStats
from citi.data.render import encode_all
from citi.models.loader import DEFAULT_MODEL, load_tokenizer

TARGET = 1.3
GLAIVE = "glaive_toolcall/glaive_toolcall_en_demo.json"


def _default_data() -> str:
    root = os.environ.get("CITI_DATA_DIR") or str(Path.home() / ".cache" / "citi" / "data")
    return str(Path(root) / GLAIVE)


def citi_pipeline(tokenizer, path: Path, max_length: int, stats: EncodeStats) -> int:
    examples = to_examples(load_conversations(path), "tool", "bench")
    template = chat_template_for(tokenizer)
    return len(encode_all(tokenizer, examples, max_length, template, stats))


def bare_pipeline(tokenizer, rows: list[tuple[list, list | None]], template: str) -> int:
    tokens = 0
    for messages, tools in rows:
        text = tokenizer.apply_chat_template(
            messages, tools=tools, chat_template=template, tokenize=False
        )
        tokens += len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--data", default=None, help=f"a glaive-shaped file (default: {GLAIVE})")
    p.add_argument("--max-length", type=int, default=4096)
    args = p.parse_args()
    source = json.loads(Path(args.data or _default_data()).read_text(encoding="utf-8"))
    records = [source[i % len(source)] for i in range(args.rows)]
    tokenizer = load_tokenizer(args.model)
    template = chat_template_for(tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.json"
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
        warm = Path(tmp) / "warm.json"
        warm.write_text(json.dumps(records[:100], ensure_ascii=False), encoding="utf-8")
        canonical = [
            ([dict(m) for m in c.messages], [dict(t) for t in c.tools] or None)
            for c in load_conversations(path)
        ]
        own = tokenizer.chat_template
        rewritten = [(hermes_messages(m, t), None) for m, t in canonical]
        citi_pipeline(tokenizer, warm, args.max_length, EncodeStats())
        bare_pipeline(tokenizer, canonical[:100], template)
        bare_pipeline(tokenizer, rewritten[:100], own)
        stats = EncodeStats()
        start = time.perf_counter()
        citi_pipeline(tokenizer, path, args.max_length, stats)
        citi_s = time.perf_counter() - start
        start = time.perf_counter()
        bare_pipeline(tokenizer, canonical, template)
        bare_s = time.perf_counter() - start
        start = time.perf_counter()
        bare_pipeline(tokenizer, rewritten, own)
        floor_s = time.perf_counter() - start
    ratio = citi_s / bare_s
    print(f"{args.rows} glaive-shaped conversations, {args.model} tokenizer")
    print(f"  citi: convert + render + label + tokenise   {citi_s:8.2f} s")
    print(f"  bare: apply_chat_template + tokenise        {bare_s:8.2f} s")
    print(f"  floor: own template, pre-rewritten rows    {floor_s:8.2f} s")
    print(f"citi / bare {ratio:.3f} (target <= {TARGET}) {'met' if ratio <= TARGET else 'NOT met'}")
    print(f"citi / floor {citi_s / floor_s:.3f}")
    print(f"encoding: {json.dumps(stats.to_dict())}")


if __name__ == "__main__":
    main()
