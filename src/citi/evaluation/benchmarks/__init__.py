"""The benchmarks, one module each; every module lists its tasks in ``TASKS``, and
``citi.evaluation.registry`` names the modules (docs/guides/evaluation.md: adding a task)."""
