"""Losses on label tokens only, with the LM head applied only where there are labels.

Prompts are long and vocabularies large: logits for prompt positions would be most of the memory
and a fifth of the compute of a pass, and they never enter the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from citi.data.render import IGNORE_INDEX, Encoded, PaddingCollator


def _is_fsdp_root(model) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def label_token_ce(model, batch: dict[str, torch.Tensor]):
    """Per-label-token cross-entropy, the example index of each token, and the label mask.

    Returns ``(token_loss [n_label], rows [n_label], mask [batch, seq-1])``.
    """
    # Position t predicts token t+1: shift the labels left.
    labels = batch["labels"][:, 1:]  # [batch, seq-1]
    mask = labels != IGNORE_INDEX
    rows, cols = mask.nonzero(as_tuple=True)  # [n_label] each
    if _is_fsdp_root(model):
        # FSDP2 gathers the root's parameters (embeddings, head) in the model's own forward
        # only: compute every position's logits there, then keep the label positions.
        logits = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        ).logits[:, :-1][rows, cols]  # [n_label, vocab]
    else:
        hidden = model.get_decoder()(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
        ).last_hidden_state  # [batch, seq, hidden]
        logits = model.get_output_embeddings()(hidden[:, :-1][rows, cols])  # [n_label, vocab]
    token_loss = F.cross_entropy(logits.float(), labels[rows, cols], reduction="none")
    return token_loss, rows, mask


def label_token_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ over examples of each example's mean cross-entropy on its label tokens.

    Used for importance: a sum over examples does not depend on batching or order. Examples
    without label tokens contribute 0.
    """
    token_loss, rows, mask = label_token_ce(model, batch)
    per_example = token_loss.new_zeros(mask.shape[0]).index_add_(0, rows, token_loss)
    return (per_example / mask.sum(1).clamp(min=1)).sum()


def mean_token_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over all label tokens of the batch (the usual SFT loss)."""
    token_loss, _, _ = label_token_ce(model, batch)
    return token_loss.mean() if token_loss.numel() else token_loss.sum()


class CausalLMLoss(nn.Module):
    """Wraps a causal LM so that ``forward(batch)`` returns the SFT loss.

    Distributed wrappers (DDP, FSDP) must see the whole loss computation in one ``forward`` call
    to synchronise gradients, so training wraps this module rather than the bare model.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, labels) -> torch.Tensor:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        return mean_token_loss(self.model, batch)


@torch.no_grad()
def mean_label_loss(model, encoded: list[Encoded], pad_id: int, batch_size: int, device) -> float:
    """Mean cross-entropy per label token over ``encoded`` (no routing context: inference)."""
    collate = PaddingCollator(pad_id)
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    ordered = sorted(encoded, key=lambda e: len(e.input_ids))
    for i in range(0, len(ordered), batch_size):
        batch = {k: v.to(device) for k, v in collate(ordered[i : i + batch_size]).items()}
        token_loss, _, _ = label_token_ce(model, batch)
        total += float(token_loss.double().sum())
        count += token_loss.numel()
    model.train(was_training)
    return total / max(count, 1)
