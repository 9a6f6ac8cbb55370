import dataclasses
import json
import random
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from citi.data import PaddingCollator
from citi.data.render import Encoded
from citi.loss import label_token_ce
from citi.train.batching import epoch_order, padding_of
from citi.train.loop import Trainer
from tests.helpers import small_config


def _lengths(n: int, seed: int = 0) -> list[int]:
    """Skewed like chat data: mostly short, a long tail."""
    rng = random.Random(seed)
    return [int(20 + rng.expovariate(1 / 120)) for _ in range(n)]


def _share(order: list[int], lengths: list[int], batch: int) -> float:
    slots = padded = 0
    for i in range(0, len(order), batch):
        s, p = padding_of([lengths[j] for j in order[i : i + batch]], batch)
        slots, padded = slots + s, padded + p
    return padded / slots


def test_padding_of_counts_each_process_micro_batch_separately():
    # Two processes of 2: [5, 3] pads to 5 (2 padded), [10, 10] none.
    assert padding_of([5, 3, 10, 10], 2) == (30, 2)
    # One process of 4: everything padded to 10.
    assert padding_of([5, 3, 10, 10], 4) == (40, 12)


@pytest.mark.parametrize("n, multiple", [(193, 2), (100, 4), (7, 3)])
def test_grouped_order_holds_the_same_examples_as_the_shuffled_one(n, multiple):
    lengths = _lengths(n)
    plain = epoch_order(n, 42, 1, 0, multiple)
    grouped = epoch_order(n, 42, 1, 0, multiple, lengths)
    assert Counter(grouped) == Counter(plain)  # the same examples, wrap-around included
    assert len(grouped) % multiple == 0 and set(grouped) == set(range(n))
    # Seeded: the same order again, another one in the next epoch or under another seed.
    assert epoch_order(n, 42, 1, 0, multiple, lengths) == grouped
    if n > 10:
        assert epoch_order(n, 42, 1, 1, multiple, lengths) != grouped
        assert epoch_order(n, 43, 1, 0, multiple, lengths) != grouped


def test_grouping_cuts_padding_below_ten_percent():
    lengths = _lengths(400)
    plain = epoch_order(400, 42, 0, 0, 2)
    grouped = epoch_order(400, 42, 0, 0, 2, lengths)
    assert _share(plain, lengths, 2) > 0.2
    assert _share(grouped, lengths, 2) < 0.1


def test_grouped_batches_keep_every_token_loss(tiny_llama):
    """Same examples, other micro-batch partners: the sum of the per-token losses over an epoch
    is unchanged (padding is masked out of attention and loss)."""
    g = torch.Generator().manual_seed(0)
    lengths = [9, 40, 12, 33, 18, 7, 25, 30]
    examples = []
    for i, n in enumerate(lengths):
        ids = torch.randint(5, 200, (n,), generator=g).tolist()
        labels = [-100] * (n // 2) + ids[n // 2 :]
        examples.append(Encoded(input_ids=ids, labels=labels, task_type=i % 2))
    collate = PaddingCollator(0)
    model = tiny_llama.model.eval()

    def epoch(order):
        total, count, padded = torch.zeros((), dtype=torch.float64), 0, 0
        for i in range(0, len(order), 2):
            batch = collate([examples[j] for j in order[i : i + 2]])
            with torch.no_grad():
                token_loss, _, _ = label_token_ce(model, batch)
            total += token_loss.double().sum()
            count += token_loss.numel()
            padded += int((batch["attention_mask"] == 0).sum())
        return total, count, padded

    plain = epoch(epoch_order(8, 5, 0, 0, 2))
    grouped = epoch(epoch_order(8, 5, 0, 0, 2, lengths))
    assert plain[1] == grouped[1]  # the same label tokens
    assert grouped[2] < plain[2]  # less padding
    torch.testing.assert_close(grouped[0], plain[0], rtol=1e-5, atol=1e-5)


def test_trainer_reports_padded_share_and_grouping_lowers_it(tmp_path, data_dir, selection_file):
    shares = {}
    for grouped in (False, True):
        config = small_config(
            data_dir,
            selection_file,
            method="lora-dm",  # tool examples cut at 160 tokens, shorter general ones
            group_by_length=grouped,
            batch_size=4,
            grad_accum=1,
        )
        summary = Trainer(config, tmp_path / str(grouped)).run()
        (shares[grouped],) = summary["padded_share"].values()
    assert 0 <= shares[True] < shares[False] < 1


def test_grouped_run_resumes_to_the_same_weights(tmp_path, data_dir, selection_file):
    config = small_config(data_dir, selection_file, save_every=1, group_by_length=True)
    full = Trainer(config, tmp_path / "full").run()
    cut = dataclasses.replace(config, max_steps=9)  # inside stage 2 (stage 1 has 5 steps)
    assert Trainer(cut, tmp_path / "cut").run()["paused_at_step"] == 9
    resumed = Trainer(config, tmp_path / "cut").run(resume=True)
    a = load_file(str(tmp_path / "full" / "final" / "adapter.safetensors"))
    b = load_file(str(tmp_path / "cut" / "final" / "adapter.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The padding count survives the checkpoint: the same totals as the uninterrupted run.
    assert resumed["padded_share"] == full["padded_share"]
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["padded_share"]
