"""``citi serve`` with the model's answers scripted where a test needs a tool call.

The tiny test model is random, so it never writes a call by itself. This runs the real
``citi serve`` (rendering, batching, parsing, streaming, errors all as shipped) and only forces
the next token while generating: a prompt listing the ``get_weather`` tool gets :data:`CALL`
(continued from a forced prefix when the prompt already ends with part of it), a prompt holding
a tool result gets :data:`ANSWER`; any other prompt is answered by the random model itself.

    python tests/serve/scripted_serve.py serve RUN --port N ...
"""

import sys

import torch
from transformers import LogitsProcessor, LogitsProcessorList

import citi.serve.model as served_model
from citi.cli.main import main

CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
ANSWER = "It is sunny in Paris."


def script_for(prompt: str) -> str | None:
    if "<tool_response>" in prompt:
        return ANSWER
    if "<tools>" in prompt and "get_weather" in prompt:
        for k in range(len(CALL), 10, -1):  # a forced call's prefix is already in the prompt
            if prompt.endswith(CALL[:k]):
                return CALL[k:]
        return CALL
    return None


class Script(LogitsProcessor):
    def __init__(self, tokenizer, end_id: int):
        self.tokenizer, self.end_id = tokenizer, end_id
        self.width, self.scripts = None, None

    def __call__(self, input_ids, scores):
        if self.width is None:
            self.width = input_ids.shape[1]
            prompts = self.tokenizer.batch_decode(input_ids, skip_special_tokens=False)
            self.scripts = [script_for(p) for p in prompts]
            self.scripts = [
                None if s is None else self.tokenizer(s, add_special_tokens=False)["input_ids"]
                for s in self.scripts
            ]
        step = input_ids.shape[1] - self.width
        for row, ids in enumerate(self.scripts):
            if ids is not None:
                target = ids[step] if step < len(ids) else self.end_id
                scores[row] = torch.where(
                    torch.arange(scores.shape[1], device=scores.device) == target, 0.0, -1e9
                )
        return scores


def _load(*args, **kwargs):
    served = _original(*args, **kwargs)
    generate = served.model.generate
    end_id = served.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def scripted(*a, **kw):
        processors = LogitsProcessorList(kw.pop("logits_processor", None) or [])
        processors.append(Script(served.tokenizer, end_id))
        return generate(*a, logits_processor=processors, **kw)

    served.model.generate = scripted
    return served


_original = served_model.load_served
served_model.load_served = _load

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
