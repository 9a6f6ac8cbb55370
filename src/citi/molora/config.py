"""MOLoRA hyper-parameters (paper Sec. 3.2 and appendix A)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from citi.config import setting
from citi.errors import ConfigError

ROUTING_LOSSES = ("cv2", "paper")


@dataclass
class MoloraConfig:
    """``num_experts`` LoRA experts of rank ``rank`` (scaling ``alpha / rank``) and a router.

    With ``null_expert`` the router has one extra output, G(x)[0], that multiplies no expert: it
    only takes probability mass away from the experts (the "tool-unrelated" neuron) and enters the
    routing loss. ``routing_loss``: ``cv2`` = var/mean² (the authors' code, from LoRAMoE) or
    ``paper`` = var/mean (Eq. 9 as printed). ``delta`` is the paper's λ (0.95) and ``beta`` the
    weight of the routing loss (0.01).
    """

    num_experts: int = setting(4, help="LoRA experts per MOLoRA component")
    rank: int = setting(8, help="rank of each expert")
    alpha: float = setting(2.0, help="expert scaling alpha / rank")
    dropout: float = setting(0.0, cli=False)
    null_expert: bool = setting(True, cli=False)  # the method's choice (citi.train.methods)
    routing_loss: str = setting(
        "cv2", choices=ROUTING_LOSSES, help="cv2 (the authors' code) or paper (Eq. 9 as printed)"
    )
    delta: float = setting(0.95, help="the paper's lambda")
    beta: float = setting(0.01, help="routing-loss weight")

    def __post_init__(self) -> None:
        if not isinstance(self.num_experts, int) or self.num_experts < 1:
            raise ConfigError(f"--num-experts: must be an integer >= 1, got {self.num_experts!r}")
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ConfigError(f"--rank: must be an integer >= 1, got {self.rank!r}")
        for opt, value in (
            ("--alpha", self.alpha),
            ("--dropout", self.dropout),
            ("--delta", self.delta),
            ("--beta", self.beta),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{opt}: must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ConfigError(f"{opt}: must be finite, got {value}")
        if not self.alpha > 0:
            raise ConfigError(f"--alpha: must be > 0, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout: must be in [0, 1), got {self.dropout}")
        if self.routing_loss not in ROUTING_LOSSES:
            raise ConfigError(
                f"--routing-loss: choose one of {', '.join(ROUTING_LOSSES)}, "
                f"got {self.routing_loss!r}"
            )
        if not 0 < self.delta < 1:
            raise ConfigError(f"--delta: must be in (0, 1), got {self.delta}")
        if self.beta < 0:
            raise ConfigError(f"--beta: must be >= 0, got {self.beta}")

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    @property
    def router_outputs(self) -> int:
        return self.num_experts + (1 if self.null_expert else 0)
