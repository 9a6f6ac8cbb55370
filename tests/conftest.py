from __future__ import annotations

import json

import pytest

from tests.fixtures.make_fixtures import write_fixtures


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """A data directory holding small hand-made datasets in the public raw formats."""
    return write_fixtures(tmp_path_factory.mktemp("data"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # Tests never read the user's data directory or write to the user's cache by accident.
    monkeypatch.delenv("CITI_DATA_DIR", raising=False)
    monkeypatch.setenv("CITI_CACHE", str(tmp_path / "citi-cache"))


@pytest.fixture(scope="session")
def tiny_llama():
    from citi.models import load_model

    return load_model("tiny-llama", device="cpu")


@pytest.fixture(scope="session")
def tiny_phi3():
    from citi.models import load_model

    return load_model("tiny-phi3", device="cpu")


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
