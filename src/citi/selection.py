"""Choosing components from importance scores: MOLoRA (top by M_h) and UCO (bottom by C_h).

Selection is global over all components, as in the authors' code. Unlike that code, the UCO set
never contains a MOLoRA component: a component in both sets would be unfrozen in stage 3 together
with its adapter (the authors' defect 1).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from citi.errors import ConfigError

SELECTION_RULES = ("top", "down", "random")


def count_for(ratio: float, n: int, option: str) -> int:
    """``round(ratio * n)`` components (45 of 224 at 20%, 22 of 224 at 10%), validated."""
    if not 0 < ratio < 1:
        raise ConfigError(f"{option}: ratio must be in (0, 1), got {ratio}")
    k = round(ratio * n)
    if k < 1:
        raise ConfigError(f"{option}: {ratio} of {n} components selects none; use a larger ratio")
    return k


def read_selection(path, option: str = "--selection") -> dict:
    """A selection.json read back from disk, checked by shape: ``molora`` (and ``uco``, default
    none) lists of component names, no component in both. One error line naming the file and the
    field otherwise."""
    from citi.io import read_json

    sel = read_json(path)
    if not isinstance(sel, dict) or not isinstance(sel.get("molora"), list):
        raise ConfigError(f"{option}: {path} is not a selection.json (no 'molora' list)")
    sel.setdefault("uco", [])
    for key in ("molora", "uco"):
        value = sel[key]
        names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not names:
            bad = (
                next((v for v in value if not isinstance(v, str)), value)
                if isinstance(value, list)
                else value
            )
            raise ConfigError(
                f"{option}: {path}: '{key}' must be a list of component names "
                f"(like layers.0.self_attn.q_proj), found {bad!r}"
            )
    overlap = set(sel["molora"]) & set(sel["uco"])
    if overlap:
        raise ConfigError(
            f"{option}: components in both MOLoRA and UCO sets: {', '.join(sorted(overlap)[:3])}"
        )
    return sel


def _by_score(scores: dict[str, float]) -> list[str]:
    """Most important first; ties broken by name for reproducibility."""
    return sorted(scores, key=lambda h: (-scores[h], h))


@dataclass
class Selection:
    molora: list[str]
    uco: list[str]
    method: str
    molora_ratio: float
    uco_ratio: float
    seed: int | None = None
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def select_components(
    tool: dict[str, float],
    general: dict[str, float],
    molora_ratio: float = 0.20,
    uco_ratio: float = 0.10,
    method: str = "top",
    seed: int = 0,
) -> Selection:
    """MOLoRA set by ``method`` over M_h (``tool``); UCO set = lowest C_h (``general``) of the rest.

    ``top`` is CITI; ``down`` (least tool-important) and ``random`` (seeded) are the Table 2
    controls. ``uco_ratio`` may be 0 to select no UCO components.
    """
    if method not in SELECTION_RULES:
        raise ConfigError(
            f"--select: unknown method {method!r}; choose one of {', '.join(SELECTION_RULES)}"
        )
    if set(tool) != set(general):
        raise ConfigError("tool and general scores must cover the same components")
    n = len(tool)
    k = count_for(molora_ratio, n, "--molora-ratio")
    ranked = _by_score(tool)
    if method == "top":
        molora = ranked[:k]
    elif method == "down":
        molora = ranked[-k:][::-1]
    else:
        molora = random.Random(seed).sample(sorted(tool), k)
    uco: list[str] = []
    if uco_ratio:
        k_uco = count_for(uco_ratio, n, "--uco-ratio")
        rest = [h for h in _by_score(general)[::-1] if h not in set(molora)]
        if len(rest) < k_uco:
            raise ConfigError(
                f"--uco-ratio: {k_uco} UCO components requested but only {len(rest)} are not "
                f"already MOLoRA components; lower --molora-ratio or --uco-ratio"
            )
        uco = rest[:k_uco]
    return Selection(
        molora, uco, method, molora_ratio, uco_ratio, seed if method == "random" else None
    )
