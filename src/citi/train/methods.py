"""Every training method as data: which adapters it adds and which stages it runs.

A stage names the parameter group it trains, its learning rate and its epochs. Defaults follow
the paper's appendix A (and the authors' YAML files where the paper is silent).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Stage:
    name: str
    group: str  # the parameters it trains: router, molora, uco, lora, selected or all
    lr: float
    epochs: float
    routing_loss: bool = False  # add beta * L_r (only with a null-expert MOLoRA)


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    stages: tuple[Stage, ...]
    adapter: str = "none"  # "molora", "lora" or "none"
    lora_rank: int = 16
    lora_alpha: float = 16
    lora_targets: str = "all"  # "all" linear components or the "selected" (MOLoRA) ones
    null_expert: bool = True
    mix: bool = True  # train on tool data mixed with general data
    needs_selection: bool = True


RP = Stage("rp", "router", 2e-4, 1, routing_loss=True)
MI = Stage("mi", "molora", 2e-4, 2, routing_loss=True)
UCO = Stage("uco", "uco", 2e-5, 1, routing_loss=True)

METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "citi",
            "CITI: router pre-training, MOLoRA improvement, unimportant-component optimisation",
            (RP, MI, UCO),
            adapter="molora",
        ),
        Method(
            "ft",
            "full fine-tuning of every weight",
            (Stage("ft", "all", 2e-5, 2),),
            mix=False,
            needs_selection=False,
        ),
        Method(
            "lora",
            "PEFT LoRA (r16, alpha 16) on every linear component",
            (Stage("lora", "lora", 2e-4, 2),),
            adapter="lora",
            mix=False,
            needs_selection=False,
        ),
        Method(
            "lora-dm",
            "control: PEFT LoRA (r16, alpha 16) on every linear component, trained on the same "
            "mixed data as CITI (the paper's +DM rows: is CITI's retention just the data mix?)",
            (Stage("lora", "lora", 2e-4, 2),),
            adapter="lora",
            mix=True,
            needs_selection=False,
        ),
        Method(
            "uco-only",
            "ablation: stage 3 alone (UCO components, no MOLoRA)",
            (replace(UCO, routing_loss=False),),
        ),
        Method("rp-mi", "ablation: stages 1 and 2 only", (RP, MI), adapter="molora"),
        Method("wo-rp", "ablation: without router pre-training", (MI, UCO), adapter="molora"),
        Method(
            "wo-lr",
            "ablation: no null expert and no routing loss",
            (replace(MI, routing_loss=False), replace(UCO, routing_loss=False)),
            adapter="molora",
            null_expert=False,
        ),
        Method(
            "wo-molora",
            "ablation: plain LoRA (r32, alpha 32) on the top components, then UCO",
            (Stage("lora", "lora", 2e-4, 2), replace(UCO, routing_loss=False)),
            adapter="lora",
            lora_rank=32,
            lora_alpha=32,
            lora_targets="selected",
        ),
        Method(
            "lora-selected",
            "Table 2: LoRA (r32, alpha 32) on the selected components only",
            (Stage("lora", "lora", 2e-4, 2),),
            adapter="lora",
            lora_rank=32,
            lora_alpha=32,
            lora_targets="selected",
        ),
        Method(
            "ft-selected",
            "Table 2: full fine-tuning of the selected components only",
            (Stage("ft", "selected", 2e-5, 1),),
        ),
    ]
}
