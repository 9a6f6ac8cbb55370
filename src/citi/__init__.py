"""citi: Component Importance-based Tool-utilizing ability Injection (Hao et al., AAAI 2025)."""

__version__ = "0.1.0"
