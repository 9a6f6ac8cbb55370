import json

import pytest


@pytest.fixture(scope="session")
def selection_file(tmp_path_factory):
    """A hand-written selection for tiny-llama (4 layers x 7 components)."""
    path = tmp_path_factory.mktemp("sel") / "selection.json"
    path.write_text(
        json.dumps(
            {
                "molora": [
                    "layers.0.self_attn.q_proj",
                    "layers.1.mlp.up_proj",
                    "layers.3.mlp.down_proj",
                ],
                "uco": ["layers.2.self_attn.v_proj", "layers.0.mlp.gate_proj"],
                "method": "top",
                "molora_ratio": 0.1,
                "uco_ratio": 0.07,
            }
        )
    )
    return path


def small_config(data_dir, selection, **kw):
    from citi.train.config import TrainConfig

    values = dict(
        method="citi",
        model="tiny-llama",
        data_dir=str(data_dir),
        selection=str(selection),
        mix_per_source=3,
        max_length=160,
        batch_size=2,
        grad_accum=2,
        seed=7,
        lr={},
        save_every=0,
    )
    values.update(kw)
    return TrainConfig(**values)
