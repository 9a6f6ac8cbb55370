import copy

import torch

from citi.analysis.router import gate_distributions, run_router_analysis
from citi.data import load_dataset
from citi.molora import MoloraConfig, inject_molora


def test_gate_distributions_are_probabilities_and_ignore_padding(tiny_llama, data_dir, tmp_path):
    model = copy.deepcopy(tiny_llama.model)
    names = ["layers.0.self_attn.q_proj", "layers.1.mlp.up_proj", "layers.2.mlp.down_proj"]
    inject_molora(model, names, MoloraConfig())
    groups = {
        "tool": load_dataset("apibank-l2", data_dir),
        "non-tool": load_dataset("gsm8k-test", data_dir),
    }
    dist = gate_distributions(model, tiny_llama.tokenizer, groups, max_length=128, batch_size=1)
    batched = gate_distributions(model, tiny_llama.tokenizer, groups, max_length=128, batch_size=3)
    for layer, per_group in dist.items():
        for group, gates in per_group.items():
            assert len(gates) == 5 and abs(sum(gates) - 1) < 1e-5
            # Padding in bigger batches must not change the averages.
            torch.testing.assert_close(torch.tensor(gates), torch.tensor(batched[layer][group]))
    out = run_router_analysis(model, tiny_llama.tokenizer, groups, tmp_path, max_layers=2)
    assert len(out) == 2
    assert (tmp_path / "router.png").read_bytes()[:4] == b"\x89PNG"
