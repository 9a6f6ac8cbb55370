"""MOLoRA as a PEFT method: ``get_peft_model``, ``save_pretrained``, ``PeftModel.from_pretrained``
and transformers' ``model.load_adapter`` work on it once ``citi`` is imported.

    import citi  # registers MOLoRA with PEFT
    from citi.molora.peft import MoloraPeftConfig
    from peft import get_peft_model, PeftModel
    model = get_peft_model(base, MoloraPeftConfig(target_modules=["q_proj", "down_proj"]))
    model = PeftModel.from_pretrained(base, "exported/adapter")

The layer computes exactly what citi's own ``MoloraLinear`` computes (both call
``mixture_delta``), and the checkpoint keys are citi's own with PEFT's ``base_model.model.``
prefix, so a citi run converts by renaming keys (``citi export``). Gates depend on the input, so a
MOLoRA adapter cannot be merged into the base weights. The routing loss is citi's trainer's
business (``citi train``); here the adapter trains with the task loss alone.

PEFT has no public way to add a method outside its own ``PeftType`` enum
(``register_peft_method`` refuses other names), so ``register()`` adds MOLoRA to the three
mappings in ``peft.mapping`` that PEFT >= 0.21 looks methods up in. That is not a documented API:
``register()`` checks the version (``PEFT_RANGE``) and the mappings' presence and otherwise says
what is wrong in one line.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from citi.errors import CitiError
from citi.molora.config import MoloraConfig
from citi.molora.layer import MoloraLinear, mixture_delta

PEFT_RANGE = ((0, 21), (0, 22))  # [first supported, first unsupported) minor versions
PREFIX = MoloraLinear.prefix  # the one adapter-name rule, declared on the layer


class CitiPeftType(str, enum.Enum):
    """A string-valued enum of citi's own: PEFT serialises ``peft_type`` as its value."""

    MOLORA = "MOLORA"


def _peft_version() -> tuple[int, int]:
    import peft

    major, minor = (int(p) for p in peft.__version__.split(".")[:2])
    return major, minor


def peft_supported() -> str | None:
    """None when this PEFT can host MOLoRA, else the reason in one line."""
    try:
        version = _peft_version()
    except ImportError:
        return "PEFT is not installed"
    low, high = PEFT_RANGE
    if not low <= version < high:
        return (
            f"MOLoRA registers with PEFT {low[0]}.{low[1]}.x to {high[0]}.{high[1] - 1}.x only "
            f"(found {'.'.join(map(str, version))}): it uses peft.mapping's tables, which are not "
            f"a public API"
        )
    import peft.mapping as mapping

    for table in ("CONFIG", "TUNER", "PREFIX"):
        if not isinstance(getattr(mapping, f"PEFT_TYPE_TO_{table}_MAPPING", None), dict):
            return f"this PEFT has no peft.mapping.PEFT_TYPE_TO_{table}_MAPPING"
    return None


def require_peft() -> None:
    reason = peft_supported()
    if reason:
        raise CitiError(reason)


from peft.config import PeftConfig  # noqa: E402
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer  # noqa: E402


@dataclass
class MoloraPeftConfig(PeftConfig):
    """PEFT config of a MOLoRA adapter; the fields mean what they mean in citi's MoloraConfig."""

    target_modules: list[str] | str | None = field(
        default=None,
        metadata={"help": "module names or full paths (list) or a regex (str), as in LoraConfig"},
    )
    exclude_modules: list[str] | str | None = field(default=None)
    # MoloraConfig's fields and defaults (declared here too: PEFT serialises dataclass fields)
    num_experts: int = MoloraConfig.num_experts
    rank: int = MoloraConfig.rank
    alpha: float = MoloraConfig.alpha
    dropout: float = MoloraConfig.dropout
    null_expert: bool = MoloraConfig.null_expert
    routing_loss: str = MoloraConfig.routing_loss
    delta: float = MoloraConfig.delta
    beta: float = MoloraConfig.beta
    layers_to_transform: list[int] | int | None = None
    layers_pattern: list[str] | str | None = None
    modules_to_save: list[str] | None = None

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = CitiPeftType.MOLORA
        if self.target_modules is None:
            raise ValueError("MoloraPeftConfig: target_modules is required (module names or paths)")
        if isinstance(self.target_modules, list | tuple):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list | tuple):
            self.exclude_modules = set(self.exclude_modules)
        self.molora_config()  # citi's own validation of the hyper-parameters

    def molora_config(self) -> MoloraConfig:
        try:
            return MoloraConfig(**{f.name: getattr(self, f.name) for f in fields(MoloraConfig)})
        except CitiError as err:  # PEFT callers expect ValueError
            raise ValueError(f"MoloraPeftConfig: {err}") from None


class MoloraPeftLayer(nn.Module, BaseTunerLayer):
    """A linear component with one MOLoRA mixture per adapter name (PEFT's layer convention)."""

    adapter_layer_names = MoloraLinear.adapter_layer_names
    other_param_names = ("molora_settings",)

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: MoloraPeftConfig):
        super().__init__()
        if not isinstance(base_layer, nn.Linear):
            raise ValueError(f"MOLoRA wraps nn.Linear components only, got {type(base_layer)}")
        self.base_layer = base_layer
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.molora_A = nn.ParameterDict({})
        self.molora_B = nn.ParameterDict({})
        self.molora_router = nn.ModuleDict({})
        self.molora_settings: dict[str, MoloraConfig] = {}
        self._disable_adapters = False
        self.merged_adapters: list[str] = []
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, config)

    def update_layer(self, adapter_name: str, config: MoloraPeftConfig) -> None:
        cfg = config.molora_config()
        n, r = cfg.num_experts, cfg.rank
        weight = self.base_layer.weight
        factory: dict[str, Any] = {"device": weight.device, "dtype": torch.float32}
        a = torch.empty(n * r, self.in_features, **factory)
        for i in range(n):  # each expert's A initialised like citi's MoloraLinear
            nn.init.kaiming_uniform_(a[i * r : (i + 1) * r], a=math.sqrt(5))
        self.molora_A[adapter_name] = nn.Parameter(a)
        self.molora_B[adapter_name] = nn.Parameter(torch.zeros(self.out_features, n * r, **factory))
        self.molora_router[adapter_name] = nn.Linear(
            self.in_features, cfg.router_outputs, bias=False, **factory
        )
        self.molora_settings[adapter_name] = cfg
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        raise ValueError("MOLoRA cannot be merged into the base weights: its gates depend on x")

    def unmerge(self) -> None:
        return None  # nothing is ever merged

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)  # [..., out]
        if self.disable_adapters:
            return result
        for name in self.active_adapters:
            if name not in self.molora_A:
                continue
            result = result + mixture_delta(
                x,
                self.molora_A[name],
                self.molora_B[name],
                self.molora_router[name],
                self.molora_settings[name],
            )
        return result


class MoloraPeftModel(BaseTuner):
    """Injects ``MoloraPeftLayer`` into the targeted linear components (PEFT's tuner convention)."""

    prefix: str = PREFIX
    tuner_layer_cls = MoloraPeftLayer
    target_module_mapping: dict = {}  # MOLoRA goes where importance says: no default targets

    def _create_and_replace(
        self, peft_config, adapter_name, target, target_name, parent, current_key, **kwargs
    ):
        if isinstance(target, MoloraPeftLayer):
            target.update_layer(adapter_name, peft_config)
            return
        new_module = MoloraPeftLayer(target, adapter_name, peft_config)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)


_REGISTERED = False


def register() -> bool:
    """Add MOLoRA to PEFT's method tables; True when PEFT can host it (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return True
    if peft_supported() is not None:
        return False
    import peft.mapping as mapping

    # PEFT types its registries by its own PeftType enum; a custom type registers with a str enum
    # of its own (PEFT looks entries up by the string value).
    mapping.PEFT_TYPE_TO_CONFIG_MAPPING[CitiPeftType.MOLORA] = MoloraPeftConfig  # type: ignore[index]
    mapping.PEFT_TYPE_TO_TUNER_MAPPING[CitiPeftType.MOLORA] = MoloraPeftModel  # type: ignore[index]
    mapping.PEFT_TYPE_TO_PREFIX_MAPPING[CitiPeftType.MOLORA] = PREFIX  # type: ignore[index]
    _REGISTERED = True
    return True


PEFT_KEY_PREFIX = "base_model.model."  # what PeftModel puts before the base model's own keys


def peft_adapter_state(citi_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """citi's MOLoRA tensors (``...q_proj.molora_A``) as a PEFT MOLoRA checkpoint: the same names
    under PEFT's ``base_model.model.`` prefix; base tensors (UCO, FT) are left out."""
    out = {}
    for key, value in citi_state.items():
        parts = key.split(".")
        if any(p.startswith(PREFIX) for p in parts):
            out[PEFT_KEY_PREFIX + key] = value
    return out


def peft_config_for(meta: dict, model: nn.Module, **fields) -> MoloraPeftConfig:
    """The PEFT config of a citi MOLoRA adapter (``adapter_config.json`` content ``meta``):
    full module paths as targets, so exactly the trained components are wrapped."""
    from citi.components import list_components

    paths = {c.name: c.path for c in list_components(model)}
    missing = [n for n in meta["molora_components"] if n not in paths]
    if missing:
        raise CitiError(f"--adapter: MOLoRA component {missing[0]!r} is not in this model")
    targets = [paths[n] for n in meta["molora_components"]]
    return MoloraPeftConfig(target_modules=targets, **meta["molora"], **fields)


# Whoever imports this module gets MOLoRA registered (importing it may itself be what imports
# PEFT, in which case citi's import hook runs while this module is still half-initialised).
register()
