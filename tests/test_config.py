"""Config dataclasses check types as well as ranges, from YAML and CLI alike."""

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citi.config import config_from_dict, matches_type
from citi.errors import CitiError, ConfigError
from citi.importance import ImportanceConfig
from citi.reproduce.preset import ReproduceConfig
from citi.train.config import TrainConfig

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=5,
)

REQUIRED = {TrainConfig: {"method": "lora"}, ImportanceConfig: {}, ReproduceConfig: {}}


@pytest.mark.parametrize("cls", [TrainConfig, ImportanceConfig, ReproduceConfig])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_value_for_any_field_is_a_config_or_one_config_error(cls, data):
    field = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    value = data.draw(json_values)
    try:
        config = config_from_dict(cls, {**REQUIRED[cls], field: value}, "test")
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(config, cls)


@pytest.mark.parametrize(
    "value, annotation, ok",
    [
        (1, float, True),
        (True, float, False),
        (1.5, int, False),
        (None, int | None, True),
        ({"a": 1}, dict[str, float], True),
        ({"a": "1"}, dict[str, float], False),
        ([1, "x"], list[float], False),
        ("yes", bool | None, False),
    ],
)
def test_matches_type(value, annotation, ok):
    assert matches_type(value, annotation) is ok


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"epochs": 1}, "--epochs: must be a map"),
        ({"lr": [1, 2]}, "--lr: must be a map"),
        ({"general": ["gsm8k"]}, "--general: must be a map"),
        ({"warmup_ratio": "0.1"}, "--warmup-ratio: must be a number"),
        ({"molora": 3}, "--molora: must be a map"),
    ],
)
def test_train_config_types_name_the_option(values, needle):
    with pytest.raises(ConfigError, match=needle):
        config_from_dict(TrainConfig, {"method": "lora", **values})


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"tasks": []}, "--tasks: no task"),
        ({"tasks": ["gsm8kk"]}, "did you mean 'gsm8k'"),
        ({"tasks": ["gsm8k", "gsm8k"]}, "named twice"),
        ({"tasks": ["gsm8k"], "limit": 0}, "--limit"),
        ({"tasks": ["gsm8k"], "batch_size": 2.5}, "--batch-size"),
        ({"tasks": ["gsm8k"], "task_limits": {"triviaqa": 3}}, "not among the tasks"),
        ({"tasks": ["gsm8k"], "precision": "fp16"}, "precision"),
    ],
)
def test_eval_config_is_validated_before_any_model_loads(values, needle):
    from citi.evaluation.config import EvalConfig

    with pytest.raises(CitiError, match=re.escape(needle)):
        config_from_dict(EvalConfig, values)
