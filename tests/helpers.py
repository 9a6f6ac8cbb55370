"""Helpers shared by several test modules."""


def small_config(data_dir, selection, **kw):
    from citi.train.config import TrainConfig

    values = dict(
        method="citi",
        model="tiny-llama",
        data_dir=str(data_dir),
        selection=str(selection),
        mix_per_source=3,
        max_length=160,
        batch_size=2,
        grad_accum=2,
        seed=7,
        lr={},
        save_every=0,
        precision="fp32",  # the same numbers on every CI machine; bf16 has its own tests
    )
    values.update(kw)
    return TrainConfig(**values)


def evaluate_tasks(model, tasks, out_dir, *, loaded=None, variant=None, judge=None, **settings):
    """``citi.evaluation.runner.evaluate`` with the EvalConfig built from keywords (tests only)."""
    from citi.evaluation.config import EvalConfig
    from citi.evaluation.runner import evaluate

    if settings.get("data_dir") is not None:
        settings["data_dir"] = str(settings["data_dir"])
    config = EvalConfig(model=model, tasks=list(tasks), **settings)
    return evaluate(config, out_dir, loaded=loaded, variant=variant, judge=judge)
