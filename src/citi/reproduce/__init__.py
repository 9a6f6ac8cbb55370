"""`citi reproduce`: the paper's pipeline from one command, driven by a preset."""

from citi.reproduce.pipeline import Pipeline
from citi.reproduce.preset import ReproduceConfig, load_preset

__all__ = ["Pipeline", "ReproduceConfig", "load_preset"]
