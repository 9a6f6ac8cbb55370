"""Write the evaluation file of reports/glaive: the held-out fifth of the glaive conversations
(the same seeded split `--eval-fraction 0.2` leaves out of importance and training), keeping the
conversations that call a tool, each cut after its last call turn.

Every assistant turn of the file is scored by `citi eval --tasks tool-calls`: all the held-out
call turns, and the text turns before them (where a call would be premature: false calls). The
text turns after the last call (answers to tool results, long prose) are left out only because
generating them all did not fit the CPU time of this report.

    python reports/glaive/heldout.py DATA_DIR OUT.jsonl
"""

from __future__ import annotations

import dataclasses
import sys

from citi.data.conversations import write_conversations
from citi.data.user_data import held_out_conversations

DATA = "glaive_toolcall/glaive_toolcall_en_demo.json"


def main(data_dir: str, out: str) -> None:
    held = held_out_conversations(DATA, None, 0.2, data_dir=data_dir)
    kept = []
    for conv in held:
        calls = [i for i, m in enumerate(conv.messages) if m.get("tool_calls")]
        if calls:
            kept.append(dataclasses.replace(conv, messages=conv.messages[: calls[-1] + 1]))
    write_conversations(kept, out)
    turns = sum(m["role"] == "assistant" for c in kept for m in c.messages)
    call_turns = sum(bool(m.get("tool_calls")) for c in kept for m in c.messages)
    print(
        f"{out}: {len(kept)} of {len(held)} held-out conversations, {turns} assistant turns "
        f"({call_turns} with calls)"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
