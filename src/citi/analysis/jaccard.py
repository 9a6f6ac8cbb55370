"""Jaccard overlap of importance groups across abilities (paper Sec. 2.2, Fig. 3).

Each ability's ranking is cut into thirds (high, moderate, low importance). For every pair of
abilities and every group, J(A, B) = |A ∩ B| / |A ∪ B|. The baseline is the expected Jaccard index
of two independent uniformly random subsets of the same sizes, computed exactly from the
hypergeometric distribution and checked by simulation.
"""

from __future__ import annotations

import random
from math import comb
from pathlib import Path

GROUPS = ("high", "moderate", "low")


def jaccard(a: set, b: set) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def split_thirds(ranking: list[str]) -> dict[str, list[str]]:
    """Cut a most-important-first ranking into three groups whose sizes differ by at most one."""
    n = len(ranking)
    sizes = [n // 3 + (1 if i < n % 3 else 0) for i in range(3)]
    out, start = {}, 0
    for group, size in zip(GROUPS, sizes, strict=True):
        out[group] = ranking[start : start + size]
        start += size
    return out


def expected_random_jaccard(n: int, k: int) -> float:
    """E[J(A, B)] for independent uniform random k-subsets A, B of an n-set.

    |A ∩ B| = i has the hypergeometric probability C(k, i) C(n-k, k-i) / C(n, k), and then
    |A ∪ B| = 2k - i.
    """
    if not 0 < k <= n:
        raise ValueError("need 0 < k <= n")
    total = comb(n, k)
    return sum(comb(k, i) * comb(n - k, k - i) / total * i / (2 * k - i) for i in range(k + 1))


def simulated_random_jaccard(n: int, k: int, draws: int = 20000, seed: int = 0) -> float:
    rng = random.Random(seed)
    items = range(n)
    return (
        sum(jaccard(set(rng.sample(items, k)), set(rng.sample(items, k))) for _ in range(draws))
        / draws
    )


def jaccard_analysis(rankings: dict[str, list[str]], draws: int = 20000, seed: int = 0) -> dict:
    """Pairwise Jaccard per group for the given rankings (ability -> most important first)."""
    abilities = list(rankings)
    n = len(next(iter(rankings.values())))
    if any(len(r) != n or set(r) != set(rankings[abilities[0]]) for r in rankings.values()):
        raise ValueError("every ranking must order the same components")
    groups = {a: {g: set(c) for g, c in split_thirds(r).items()} for a, r in rankings.items()}
    result: dict = {"abilities": abilities, "n_components": n, "groups": {}}
    for g in GROUPS:
        k = len(next(iter(groups.values()))[g])
        matrix = [[jaccard(groups[a][g], groups[b][g]) for b in abilities] for a in abilities]
        off = [matrix[i][j] for i in range(len(abilities)) for j in range(len(abilities)) if i < j]
        result["groups"][g] = {
            "size": k,
            "matrix": matrix,
            "mean_offdiagonal": sum(off) / len(off) if off else None,
            "expected_random": expected_random_jaccard(n, k),
            "simulated_random": simulated_random_jaccard(n, k, draws, seed),
        }
    return result


def plot_jaccard(result: dict, path: str | Path) -> None:
    """Three heatmaps (high, moderate, low) like the paper's Fig. 3, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from citi.io import write_figure_atomic

    abilities = result["abilities"]
    fig, axes = plt.subplots(1, 3, figsize=(4.2 * 3, 4), constrained_layout=True)
    for ax, g in zip(axes, GROUPS, strict=True):
        info = result["groups"][g]
        im = ax.imshow(info["matrix"], vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(len(abilities)), abilities, rotation=45, ha="right")
        ax.set_yticks(range(len(abilities)), abilities)
        for i, row in enumerate(info["matrix"]):
            for j, v in enumerate(row):
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    color="white" if v > 0.6 else "black",
                    fontsize=8,
                )
        ax.set_title(f"{g} (random: {info['expected_random']:.2f})")
    fig.colorbar(im, ax=axes, shrink=0.8, label="Jaccard index")
    write_figure_atomic(path, fig, dpi=120)
    plt.close(fig)


def run_jaccard(importance: dict, out_dir: str | Path) -> dict:
    """Jaccard analysis of an importance.json (its normalised per-ability scores)."""
    from citi.io import write_json_atomic

    rankings = {
        a: sorted(info["normalized"], key=lambda h: (-info["normalized"][h], h))
        for a, info in importance["abilities"].items()
    }
    result = jaccard_analysis(rankings)
    result["model"] = importance.get("model")
    result["score"] = importance.get("settings", {}).get("score")
    out = Path(out_dir)
    write_json_atomic(out / "jaccard.json", result)
    plot_jaccard(result, out / "jaccard.png")
    return result
