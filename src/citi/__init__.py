"""citi: Component Importance-based Tool-utilizing ability Injection (Hao et al., AAAI 2025)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"


def _register_with_peft() -> None:
    """MOLoRA becomes a PEFT method (get_peft_model, PeftModel.from_pretrained, load_adapter).
    Outside the PEFT versions it supports citi works without it, and
    ``citi.molora.peft.require_peft()`` says why (see citi/molora/peft.py)."""
    try:
        from citi.molora.peft import register
    except ImportError:  # PEFT missing or too different to import against
        return
    register()


class _AfterPeftImport(importlib.abc.MetaPathFinder):
    """Registers MOLoRA right after ``peft`` itself is imported, so ``import citi`` stays light
    (PEFT pulls in transformers) and still makes MOLoRA a PEFT method for whoever uses PEFT."""

    _looking = False

    def find_spec(self, name, path=None, target=None):
        if name != "peft" or self._looking:
            return None
        # Availability checks (transformers' importlib.util.find_spec("peft")) come here too
        # without importing: stay in place until PEFT's module really runs.
        self._looking = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._looking = False
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _register_with_peft()

        spec.loader.exec_module = exec_module
        return spec


if "peft" in sys.modules:
    _register_with_peft()
elif not any(isinstance(f, _AfterPeftImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterPeftImport())
