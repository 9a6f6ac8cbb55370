"""The loss used for importance scoring: per-example mean cross-entropy over label tokens.

Summing per-example means (instead of one mean over the batch) makes a score a plain sum over
examples, so it does not depend on how the examples were batched or ordered. The LM head is
applied only at label positions: prompts are long and the vocabulary large, and logits for prompt
tokens would be most of the memory of a pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from citi.data.render import IGNORE_INDEX


def label_token_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ over examples of the mean next-token cross-entropy on that example's label tokens."""
    hidden = model.get_decoder()(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state  # [batch, seq, hidden]
    # Position t predicts token t+1: shift the labels left.
    labels = batch["labels"][:, 1:]  # [batch, seq-1]
    mask = labels != IGNORE_INDEX
    rows, cols = mask.nonzero(as_tuple=True)  # [n_label_tokens] each
    logits = model.get_output_embeddings()(hidden[:, :-1][rows, cols])  # [n_label, vocab]
    token_loss = F.cross_entropy(logits.float(), labels[rows, cols], reduction="none")
    per_example = torch.zeros(labels.shape[0], device=token_loss.device, dtype=token_loss.dtype)
    per_example.index_add_(0, rows, token_loss)
    counts = mask.sum(1).clamp(min=1)  # examples without label tokens contribute 0
    return (per_example / counts).sum()
