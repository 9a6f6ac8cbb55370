import pytest
import torch

from citi.data import IGNORE_INDEX, PaddingCollator, encode, load_dataset, mix_datasets
from citi.data.example import single_turn


def _label_text(tok, enc):
    return tok.decode([t for t in enc.labels if t != IGNORE_INDEX], skip_special_tokens=True)


def test_labels_decode_exactly_to_the_assistant_text(tiny_llama, data_dir):
    tok = tiny_llama.tokenizer
    for ex in load_dataset("apibank-train", data_dir) + load_dataset("gsm8k", data_dir):
        enc = encode(tok, ex, max_length=4096)
        assert _label_text(tok, enc) == ex.reference
        # The end-of-turn token is supervised too, so the model learns to stop.
        last = [t for t in enc.labels if t != IGNORE_INDEX][-1]
        assert last == tok.convert_tokens_to_ids("<|im_end|>")
        # Everything before the target is masked; the prompt is a chat-template prefix.
        n_prompt = enc.labels.index(next(t for t in enc.labels if t != IGNORE_INDEX))
        prompt = tok.decode(enc.input_ids[:n_prompt])
        assert prompt.startswith("<|im_start|>user\n") and prompt.endswith(
            "<|im_start|>assistant\n"
        )


def test_no_bos_is_added_twice(tiny_llama):
    tok = tiny_llama.tokenizer
    ex = single_turn("hi", "yo", task_type=0, ability="instruction", source="t")
    enc = encode(tok, ex, 128)
    bos = tok.convert_tokens_to_ids("<|im_start|>")
    assert enc.input_ids[0] == bos and enc.input_ids[1] != bos


def test_truncation_keeps_the_end_of_the_prompt_and_some_target(tiny_llama):
    tok = tiny_llama.tokenizer
    ex = single_turn("x" * 300 + " QUESTION?", "y" * 100, task_type=1, ability="tool", source="t")
    enc = encode(tok, ex, max_length=64)
    assert len(enc.input_ids) == 64
    n_target = sum(t != IGNORE_INDEX for t in enc.labels)
    assert n_target == 32  # half of max_length is kept for the target when both are long
    assert "QUESTION?" in tok.decode(enc.input_ids)


def test_collator_pads_and_masks(tiny_llama, data_dir):
    tok = tiny_llama.tokenizer
    encs = [encode(tok, ex, 512) for ex in load_dataset("gsm8k", data_dir)[:3]]
    batch = PaddingCollator(tok.pad_token_id)(encs)
    lengths = [len(e.input_ids) for e in encs]
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    pad = batch["attention_mask"] == 0
    assert (batch["labels"][pad] == IGNORE_INDEX).all()
    assert (batch["input_ids"][pad] == tok.pad_token_id).all()
    assert batch["task_type"].tolist() == [0, 0, 0]
    assert PaddingCollator(0, pad_to_multiple_of=8)(encs)["input_ids"].shape[1] % 8 == 0


def test_mixer_is_seeded_and_complete(data_dir):
    tool = load_dataset("apibank-train", data_dir)
    general = {
        "math": load_dataset("gsm8k", data_dir),
        "code": load_dataset("codealpaca", data_dir),
    }
    a = mix_datasets(tool, general, per_source=2, seed=3)
    b = mix_datasets(tool, dict(reversed(general.items())), per_source=2, seed=3)
    assert a == b
    assert len(a) == len(tool) + 4
    assert sum(e.task_type for e in a) == len(tool)
    assert a != mix_datasets(tool, general, per_source=2, seed=4)
    # A source smaller than requested is used whole.
    assert len(mix_datasets(tool, general, per_source=100, seed=0)) == len(tool) + 6 + 4
    assert torch.tensor([e.task_type for e in a]).sum() == len(tool)


def test_target_text_of_a_prompt_only_example_is_a_data_error(tiny_llama):
    # Found by mypy: a prompt-only example (no target) used to fail with a TypeError here.
    from citi.data.render import target_text
    from citi.errors import DataError

    ex = single_turn("hi", None, task_type=0, ability="instruction", source="prompts.jsonl")
    with pytest.raises(DataError, match="prompts.jsonl: a prompt-only example"):
        target_text(tiny_llama.tokenizer, ex)
