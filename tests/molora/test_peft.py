"""MOLoRA as a PEFT method: same outputs as citi's layer, and PEFT's save/load paths work."""

import copy

import peft
import pytest
import torch
from peft import PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

import citi  # noqa: F401  (registers MOLoRA with PEFT)
from citi.errors import CitiError
from citi.models import load_model
from citi.molora import MoloraConfig, inject_molora
from citi.molora import peft as molora_peft
from citi.molora.peft import MoloraPeftConfig, peft_adapter_state, peft_config_for

COMPONENTS = ["layers.0.self_attn.q_proj", "layers.1.mlp.up_proj", "layers.3.mlp.down_proj"]
IDS = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]])


@pytest.fixture()
def base():
    return load_model("tiny-llama", device="cpu").model.eval()


def _citi_model(base, null_expert=True):
    model = copy.deepcopy(base)
    inject_molora(model, COMPONENTS, MoloraConfig(alpha=16, null_expert=null_expert))
    torch.manual_seed(1)
    with torch.no_grad():  # B = 0 would make every adapter a no-op: randomise everything
        for name, p in model.named_parameters():
            if "molora_" in name:
                p.normal_(0, 0.05)
    return model


def _logits(model):
    with torch.no_grad():
        return model(IDS).logits


@pytest.mark.parametrize("null_expert", [True, False])
def test_peft_molora_computes_citis_outputs_and_round_trips(base, tmp_path, null_expert):
    trained = _citi_model(base, null_expert)
    meta = {"molora_components": COMPONENTS, "molora": vars(trained_config(trained)).copy()}
    config = peft_config_for(meta, base, task_type="CAUSAL_LM")
    model = get_peft_model(copy.deepcopy(base), config)
    result = set_peft_model_state_dict(model, peft_adapter_state(trained.state_dict()))
    assert not result.unexpected_keys
    assert not [k for k in result.missing_keys if "molora_" in k]
    expected = _logits(trained)
    assert not torch.equal(expected, _logits(base))  # the adapter does something
    torch.testing.assert_close(_logits(model), expected, rtol=0, atol=0)

    # PEFT's own state dict is citi's, renamed: the export is a rename, not a conversion
    saved = get_peft_model_state_dict(model)
    assert saved.keys() == peft_adapter_state(trained.state_dict()).keys()

    model.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "adapter")
    torch.testing.assert_close(_logits(reloaded), expected, rtol=0, atol=0)
    with_hf = copy.deepcopy(base)
    with_hf.load_adapter(str(tmp_path / "adapter"))
    torch.testing.assert_close(_logits(with_hf), expected, rtol=0, atol=0)


def trained_config(model) -> MoloraConfig:
    return next(m.molora_config for m in model.modules() if hasattr(m, "molora_config"))


def test_peft_molora_trains_only_its_adapter_and_cannot_merge(base):
    model = get_peft_model(copy.deepcopy(base), MoloraPeftConfig(target_modules=["up_proj"]))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("molora_" in n for n in trainable)
    assert len(trainable) == 3 * 4  # A, B and router on the 4 layers' up_proj
    loss = model(IDS, labels=IDS).loss
    loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="cannot be merged"):
        model.merge_and_unload()


def test_peft_molora_config_checks_its_settings():
    with pytest.raises(ValueError, match="target_modules"):
        MoloraPeftConfig()
    with pytest.raises(ValueError, match="--rank"):
        MoloraPeftConfig(target_modules=["q_proj"], rank=0)


def test_registration_is_pinned_to_the_peft_versions_it_was_tested_with(monkeypatch):
    low, high = molora_peft.PEFT_RANGE
    installed = tuple(int(p) for p in peft.__version__.split(".")[:2])
    assert low <= installed < high  # the pin in pyproject.toml and PEFT_RANGE agree
    assert molora_peft.peft_supported() is None and molora_peft.register()
    for outside in ("0.20.0", "0.22.0", "1.0.0"):
        monkeypatch.setattr(peft, "__version__", outside)
        reason = molora_peft.peft_supported()
        assert reason and outside.rsplit(".", 1)[0] in reason and "0.21" in reason
        with pytest.raises(CitiError, match="MOLoRA registers with PEFT"):
            molora_peft.require_peft()


def test_importing_the_peft_module_first_registers_molora():
    """`citi export` imports citi.molora.peft, which itself imports PEFT for the first time."""
    import subprocess
    import sys

    code = (
        "import citi.molora.peft\n"
        "import peft.mapping as m\n"
        "print('MOLORA' in m.PEFT_TYPE_TO_CONFIG_MAPPING)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_importing_the_peft_module_after_peft_registers_molora():
    import subprocess
    import sys

    code = (
        "import peft, citi.molora.peft\n"
        "import peft.mapping as m\n"
        "print('MOLORA' in m.PEFT_TYPE_TO_CONFIG_MAPPING)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_import_citi_is_light_installs_no_hook_and_resolves_its_public_names():
    import subprocess
    import sys

    code = (
        "import sys, citi\n"
        "print('peft' in sys.modules, 'torch' in sys.modules,\n"
        "      any('citi' in type(f).__module__ for f in sys.meta_path))\n"
        "print(all(getattr(citi, name) for name in citi.__all__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, second = out.stdout.splitlines()
    assert first == "False False False"  # no PEFT, no torch, no import hook
    assert second == "True"
