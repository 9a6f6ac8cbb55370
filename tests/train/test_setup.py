import dataclasses

import pytest
import yaml

from citi.errors import CitiError
from citi.train.config import TrainConfig
from citi.train.setup import check_same_config


def test_resume_accepts_a_config_saved_before_new_settings_existed(tmp_path):
    config = TrainConfig(method="lora")
    saved = dataclasses.asdict(config)
    for newer in ("format", "supervise", "chat_template", "eval_data", "eval_fraction"):
        saved.pop(newer)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(saved))
    check_same_config(path, config)  # the missing settings count as their defaults
    with pytest.raises(CitiError, match="format: None -> 'sharegpt'"):
        check_same_config(path, dataclasses.replace(config, format="sharegpt"))
