"""The constant learning-rate schedule and the LoRA rank / alpha setting."""

import json

import pytest

import citi.train.loop as loop
from citi.errors import ConfigError
from citi.train.loop import Trainer
from tests.helpers import small_config


def test_constant_schedule_keeps_the_rate_and_lora_takes_its_alpha(
    tmp_path, data_dir, selection_file, monkeypatch
):
    made = []

    def recording(optimizer, warmup):
        scheduler = get_constant(optimizer, warmup)
        made.append(scheduler)
        return scheduler

    get_constant = loop.get_constant_schedule_with_warmup
    monkeypatch.setattr(loop, "get_constant_schedule_with_warmup", recording)
    config = small_config(
        data_dir,
        selection_file,
        method="lora",
        lr={"lora": 1e-3},
        lr_schedule="constant",
        lora={"rank": 4, "alpha": 8},
    )
    Trainer(config, tmp_path / "run").run()
    assert len(made) == 1 and made[0].get_last_lr() == [1e-3]  # cosine would end at 0
    meta = json.loads((tmp_path / "run" / "final" / "adapter_config.json").read_text())
    assert meta["lora"]["rank"] == 4 and meta["lora"]["alpha"] == 8


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"lr_schedule": "linear"}, "--lr-schedule"),
        ({"lora": {"rank": 0}}, "lora.rank"),
        ({"lora": {"alpha": -1}}, "lora.alpha"),
        ({"lora": {"dropout": 0.1}}, "unknown key(s) dropout"),
    ],
)
def test_bad_schedule_or_lora_settings_name_the_option(data_dir, selection_file, change, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        small_config(data_dir, selection_file, method="lora", **change)


def test_the_general_mix_can_leave_alpaca_out(data_dir, selection_file):
    # IFEval then measures protection of instruction following, not teaching it.
    config = small_config(
        data_dir, selection_file, general={"math": "gsm8k", "knowledge": "triviaqa"}
    )
    assert "alpaca" not in config.general.values()
