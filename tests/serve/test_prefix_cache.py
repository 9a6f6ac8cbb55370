"""Prefix caching in ``citi serve``'s batcher: greedy outputs are the same with and without the
cache, on the tiny model bare, with LoRA (PEFT) and with MOLoRA (citi's layers and PEFT's), and
a prefix's KV computed alone equals the one computed inside a longer prompt (MOLoRA routes per
token, so what follows a prefix cannot change it)."""

import copy
import queue

import pytest
import torch
from peft import LoraConfig, get_peft_model

from citi.molora import MoloraConfig, inject_molora
from citi.serve.batching import Batcher, Job
from citi.serve.model import ServedModel
from citi.serve.prefix_cache import CACHE_ARG, PrefixCache, shared_prefix

PRELUDE = (
    '<|im_start|>system\nYou may call these tools: <tools>{"name": "get_weather", '
    '"parameters": {"city": "string"}}</tools><|im_end|>\n<|im_start|>user\n'
)
QUESTIONS = ["Weather in Paris?", "Is it raining in Lima today?", "Oslo?", "Book a table"]


def _randomize(model, names: tuple[str, ...]) -> None:
    """Adapters start as no-ops (B = 0); random weights make them change the outputs."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if any(n in name for n in names):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


def _model(kind: str, base):
    model = copy.deepcopy(base)
    if kind == "lora":
        config = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "up_proj"])
        model = get_peft_model(model, config)
        _randomize(model, ("lora_B",))
    elif kind == "molora":
        inject_molora(model, ["layers.0.self_attn.q_proj", "layers.1.mlp.up_proj"], MoloraConfig())
        _randomize(model, ("molora_B", "molora_router"))
    elif kind == "molora-peft":
        from citi.molora.peft import MoloraPeftConfig

        model = get_peft_model(model, MoloraPeftConfig(target_modules=["k_proj", "down_proj"]))
        _randomize(model, ("molora_B", "molora_router"))
    return model.eval()


def _generate(model, tokenizer, prompts: list[str], cache_tokens: int, rounds: int = 2):
    """Each round, all prompts as one batch; returns the generated ids and the batcher."""
    served = ServedModel(model, tokenizer, "tiny", "", 2048, stop_ids=[])
    batcher = Batcher(served, max_batch=len(prompts), window=5, prefix_cache_tokens=cache_tokens)
    outputs = []
    try:
        for _ in range(rounds):
            events: queue.Queue = queue.Queue()
            jobs = [
                Job(tokenizer(p, add_special_tokens=False)["input_ids"], 12, events.put)
                for p in prompts
            ]
            for job in jobs:
                batcher.submit(job)
            for _ in jobs:
                assert events.get(timeout=120)[0] == "done"
            outputs.append([job.generated for job in jobs])
    finally:
        batcher.close()
    assert batcher.batches == [len(prompts)] * rounds  # one batch a round: the rows shared it
    return outputs, batcher


@pytest.mark.parametrize("kind", ["base", "lora", "molora", "molora-peft"])
def test_greedy_outputs_are_the_same_with_and_without_the_prefix_cache(kind, tiny_llama):
    model = _model(kind, tiny_llama.model)
    tokenizer = tiny_llama.tokenizer
    prompts = [PRELUDE + q + "<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    expected, plain = _generate(model, tokenizer, prompts, cache_tokens=0)
    got, cached = _generate(model, tokenizer, prompts, cache_tokens=4096)
    assert got == expected
    assert expected[0] == expected[1] and all(len(row) == 12 for row in expected[0])
    assert plain.prefixes.computed == 0  # disabled: the plain left-padded path
    shared = shared_prefix([tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts])
    assert shared == len(tokenizer(PRELUDE, add_special_tokens=False)["input_ids"])
    # computed once, in the first round; taken from the cache in the second
    assert (cached.prefixes.computed, cached.prefixes.hits) == (shared, shared)
    # and a single prompt (batch of one) is answered the same from the cache as without it
    one, _ = _generate(model, tokenizer, prompts[1:2], cache_tokens=4096)
    assert one == [[expected[0][1]], [expected[0][1]]]


@pytest.mark.parametrize("kind", ["molora", "molora-peft"])
def test_a_prefix_kv_does_not_depend_on_what_follows_it(kind, tiny_llama):
    model = _model(kind, tiny_llama.model)
    tokenizer = tiny_llama.tokenizer
    ids = tokenizer(PRELUDE + QUESTIONS[1], add_special_tokens=False)["input_ids"]
    n = len(tokenizer(PRELUDE, add_special_tokens=False)["input_ids"])
    alone = PrefixCache(model).kv(ids[:n])
    with torch.inference_mode():
        full = model(input_ids=torch.tensor([ids]), use_cache=True)
    inside = getattr(full, CACHE_ARG)
    for (keys, values), layer in zip(alone, inside.layers, strict=True):
        torch.testing.assert_close(keys, layer.keys[:, :, :n])
        torch.testing.assert_close(values, layer.values[:, :, :n])


def test_the_cache_reuses_the_longest_match_and_keeps_to_its_token_budget(tiny_llama):
    cache = PrefixCache(tiny_llama.model, max_tokens=100)
    for i in range(5):
        cache.kv([5 + i, *range(10, 70)])  # 61 tokens, nothing shared: each a new entry
    assert (len(cache), cache.tokens, cache.hits, cache.computed) == (1, 61, 0, 5 * 61)
    cache.kv([9, *range(10, 40), 99])  # 31 tokens from the entry, 1 computed, stored
    assert (len(cache), cache.tokens, cache.hits, cache.computed) == (2, 93, 31, 5 * 61 + 1)
    cache.kv([9, *range(10, 30)])  # inside a stored entry: nothing computed
    assert (len(cache), cache.hits, cache.computed) == (2, 52, 5 * 61 + 1)
    cache.kv([1] * 50)  # 143 tokens: the least recently used go until it fits
    assert (len(cache), cache.tokens) == (1, 50)


def test_a_prefix_extended_from_a_stored_one_equals_one_computed_whole(tiny_llama):
    ids = list(range(10, 60))
    cache = PrefixCache(tiny_llama.model)
    cache.kv(ids[:20] + [99])
    extended = cache.kv(ids)  # 20 tokens reused, 30 computed at positions 20..49
    assert (cache.hits, cache.computed) == (20, 21 + 30)
    whole = PrefixCache(tiny_llama.model).kv(ids)
    for (keys, values), (k, v) in zip(extended, whole, strict=True):
        torch.testing.assert_close(keys, k)
        torch.testing.assert_close(values, v)
