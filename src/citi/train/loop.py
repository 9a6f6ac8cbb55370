"""The training loop, written out: stages run one after another on ``accelerate``.

``accelerate launch`` gives multi-process and multi-GPU runs without code changes. Each stage
freezes everything but its parameter group, builds a fresh AdamW and cosine schedule, and streams
micro-batches over its epochs (a seeded permutation per epoch, sharded across processes), with
gradient accumulation, clipping, and a checkpoint every ``save_every`` optimizer steps and at the
end of the stage. ``resume=True`` continues from the last checkpoint and never repeats a finished
stage; ``max_steps`` pauses a run with a checkpoint. docs/guides/training.md has the shape.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

from citi.adapters import save_adapter
from citi.config import save_config
from citi.data import IGNORE_INDEX, PaddingCollator
from citi.errors import CitiError
from citi.io import clean_stale_temps, read_json, write_json_atomic
from citi.loss import CausalLMLoss, mean_label_loss
from citi.models.compiled import compile_in_place
from citi.models.loader import check_device
from citi.molora import RouterPretrainingLoss, experts_are_zero, routing_context
from citi.precision import autocast, resolve_precision, training_attention
from citi.train import trackers
from citi.train.batching import epoch_order, padding_of
from citi.train.checkpoint import read_progress
from citi.train.config import TrainConfig
from citi.train.data import build_eval_data, build_training_data
from citi.train.metrics_log import check_finite, log_step
from citi.train.params import group_parameter_names, set_trainable
from citi.train.setup import (
    RunSetup,
    RunState,
    build_model,
    check_same_config,
    load_selection,
    run_summary,
)
from citi.train.stage import StageRun, micro_batch_losses
from citi.train.strategy import make_strategy


class Trainer:
    """A run of a method's stages; each stage is torchtune's recipe shape: set the optimizer
    up (:meth:`_setup_stage`), accumulate micro-batches (:meth:`_accumulate`), take the
    optimizer step (:meth:`_optimizer_step`). How processes share the model (one process, DDP
    or FSDP2) is the strategy's business (citi.train.strategy), chosen here once."""

    def __init__(
        self, config: TrainConfig, out_dir: str | Path, accelerator: Accelerator | None = None
    ):
        self.config = config
        self.out = Path(out_dir)
        if config.device:
            check_device(config.device)  # one error line for "gpu0" or a missing GPU
        on_cpu = config.device == "cpu" or not torch.cuda.is_available()
        # Float32 master weights and optimizer state; bf16 matmuls under our own autocast
        # (accelerate's mixed_precision is process-global state, fixed by the first Accelerator).
        self.precision = resolve_precision(config.precision, "cpu" if on_cpu else "cuda")
        trackers.check_tracker(config.report_to)  # before any work: one line naming the package
        self.accelerator = accelerator or Accelerator(
            cpu=config.device == "cpu", **trackers.accelerator_options(config.report_to, self.out)
        )
        self.strategy = make_strategy(config.sharding, self.accelerator)
        # Stage RP without the model's backward pass (exact while B = 0); tests compare it with
        # the full backward by setting this to False.
        self.forward_only_rp = True
        # Callables (stage, model) run around each stage, e.g. for tests and analyses.
        self.on_stage_start: list = []
        self.on_stage_end: list = []
        self.state = RunState()
        self.paused = False  # stopped at config.max_steps, resumable
        self.layout: dict | None = None  # how a sharded run's parameters lie (summary.json)

    def _stage_size(self, stage) -> tuple[int, int, int]:
        """(micro-batches per epoch, micro-batches in the stage, optimizer steps in the stage)."""
        micro_size = self.config.batch_size * self.accelerator.num_processes
        per_epoch = math.ceil(len(self.built.encoded) / micro_size)
        total_micro = max(1, math.ceil(stage.epochs * per_epoch))
        return per_epoch, total_micro, math.ceil(total_micro / self.config.grad_accum)

    def _snapshot_steps(self) -> dict[int, float]:
        """Global optimizer step -> the fraction of all steps it was asked for."""
        total = sum(self._stage_size(s)[2] for s in self.config.stages())
        steps: dict = {}
        for fraction in sorted(self.config.snapshots):
            steps.setdefault(min(total, max(1, round(fraction * total))), fraction)
        return steps

    def _save_snapshot(self, model) -> None:
        fraction = self.built.snapshot_steps.get(self.state.global_step)
        if fraction is None:
            return
        state = self.strategy.gather(model)  # every process takes part
        if not self.accelerator.is_main_process:
            return
        path = self.out / "snapshots" / f"step-{self.state.global_step:05d}"
        step = self.state.global_step
        meta = {**self.built.meta, "snapshot": {"step": step, "fraction": fraction}}
        save_adapter(model, path, meta, self.built.base_keys, state)

    def _forward_only(self, stage, model) -> bool:
        """RP: only the routers' local routing loss has a gradient (see RouterPretrainingLoss)."""
        return (
            self.forward_only_rp
            and self.strategy.allows_forward_only
            and stage.group == "router"
            and stage.routing_loss
            and self.config.molora_config().null_expert
            and experts_are_zero(model)
        )

    # -- one stage: optimizer set-up, micro-batches, optimizer steps ---------------------------
    def _setup_stage(self, index: int, stage, model, start_micro: int, resume_dir) -> StageRun:
        """Freeze all but the stage's group; a fresh AdamW and cosine schedule (restored from
        the checkpoint when resuming mid-stage); the loss module, prepared by the strategy."""
        cfg = self.config
        names = group_parameter_names(model, stage.group, self.built.selection)
        params = set_trainable(model, names)
        self.accelerator.print(
            f"stage {stage.name}: training {stage.group} "
            f"({sum(p.numel() for p in params):,} parameters), "
            f"lr {stage.lr}, {stage.epochs} epoch(s)"
        )
        per_epoch, total_micro, total_steps = self._stage_size(stage)
        optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=cfg.weight_decay)
        warmup = round(cfg.warmup_ratio * total_steps)
        if cfg.lr_schedule == "constant":
            scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
        else:
            scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, total_steps)
        if resume_dir is not None and start_micro > 0:
            self.strategy.load_optimizer(resume_dir, model, optimizer, scheduler)
        forward_only = self._forward_only(stage, model)
        loss_module = RouterPretrainingLoss(model) if forward_only else CausalLMLoss(model)
        loss_module, optimizer, scheduler = self.strategy.prepare(loss_module, optimizer, scheduler)
        loss_module.train()
        return StageRun(
            index=index,
            stage=stage,
            params=params,
            optimizer=optimizer,
            scheduler=scheduler,
            loss_module=loss_module,
            forward_only=forward_only,
            use_rl=stage.routing_loss and self.config.molora_config().null_expert,
            beta=self.config.molora_config().beta,
            per_epoch=per_epoch,
            total_micro=total_micro,
            total_steps=total_steps,
            step_start=time.perf_counter(),
        )

    def _run_stage(self, index: int, stage, model, start_micro: int, resume_dir: Path | None):
        cfg, acc = self.config, self.accelerator
        run = self._setup_stage(index, stage, model, start_micro, resume_dir)
        micro_size = cfg.batch_size * acc.num_processes  # examples per global micro-batch
        collate = PaddingCollator(self.built.tokenizer.pad_token_id)
        lengths = [len(e.input_ids) for e in self.built.encoded]
        padding = self.state.padding.setdefault(stage.name, {"slots": 0, "padded": 0})
        bar = tqdm(
            total=run.total_steps,
            initial=start_micro // cfg.grad_accum,
            desc=f"stage {stage.name}",
            disable=not acc.is_local_main_process,
        )
        for micro in range(start_micro, run.total_micro):
            epoch, pos = divmod(micro, run.per_epoch)
            if pos == 0 or micro == start_micro:
                grouped = lengths if cfg.group_by_length else None
                order = epoch_order(len(lengths), cfg.seed, index, epoch, micro_size, grouped)
            # Every process counts the padding of the whole global micro-batch (same numbers).
            slots, padded = padding_of(
                [lengths[i] for i in order[pos * micro_size : (pos + 1) * micro_size]],
                cfg.batch_size,
            )
            padding["slots"] += slots
            padding["padded"] += padded
            first = pos * micro_size + acc.process_index * cfg.batch_size
            batch = collate([self.built.encoded[i] for i in order[first : first + cfg.batch_size]])
            self._accumulate(run, model, {k: v.to(acc.device) for k, v in batch.items()}, micro)
            if not run.ends_step(micro, cfg.grad_accum):
                continue
            record = self._optimizer_step(run, model, epoch, micro)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            if self.paused:
                break
        bar.close()
        return sum(p.numel() for p in run.params)

    def _accumulate(self, run: StageRun, model, batch: dict, micro: int) -> None:
        """Forward and backward of one micro-batch; gradients add up until the step."""
        cfg, acc = self.config, self.accelerator
        sync = run.ends_step(micro, cfg.grad_accum)
        ctx = (
            routing_context(model, batch["attention_mask"])
            if run.use_rl and not run.forward_only
            else contextlib.nullcontext()
        )
        no_sync = contextlib.nullcontext() if sync else acc.no_sync(run.loss_module)
        with no_sync, ctx, autocast(self.precision, acc.device):
            losses = micro_batch_losses(run, model, batch)
            acc.backward(losses["loss"] / run.micro_in_step(micro, cfg.grad_accum))
        run.window.append(
            {
                **{k: v.detach() if v is not None else None for k, v in losses.items()},
                "tokens": int(batch["attention_mask"].sum()),
                "sequences": int(batch["input_ids"].shape[0]),
                "label_tokens": int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()),
            }
        )

    def _optimizer_step(self, run: StageRun, model, epoch: int, micro: int) -> dict:
        """Clip, check, step, log; then a snapshot or checkpoint where one is due, and a pause
        at ``max_steps``. Returns the step's metrics record."""
        cfg, acc = self.config, self.accelerator
        grad_norm = (
            acc.clip_grad_norm_(run.params, cfg.max_grad_norm) if cfg.max_grad_norm else None
        )
        grad_norm = self.strategy.grad_norm(grad_norm)
        step = self.state.global_step
        check_finite(run.stage, run.window, grad_norm, step, self.out / "checkpoint")
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        self.state.global_step += 1
        self._save_snapshot(model)
        record = log_step(
            acc,
            self.out / "metrics.jsonl",
            self.state.global_step,
            run.stage,
            run.index,
            epoch,
            micro,
            run.window,
            grad_norm,
            run.scheduler.get_last_lr()[0],
            time.perf_counter() - run.step_start,
        )
        self.state.count(record)
        run.window, run.step_start = [], time.perf_counter()
        self._track(trackers.step_scalars(record))
        position = {"stage": run.index, "micro": micro + 1}
        step_in_stage = (micro + 1) // cfg.grad_accum
        if cfg.save_every and step_in_stage % cfg.save_every == 0 and micro + 1 < run.total_micro:
            self._checkpoint(position, model, run.optimizer, run.scheduler)
        if cfg.max_steps is not None and self.state.global_step >= cfg.max_steps:
            self._checkpoint(position, model, run.optimizer, run.scheduler)
            self.paused = True
        return record

    def _checkpoint(self, position: dict, model, optimizer=None, scheduler=None) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        progress = self.state.progress(position)
        self.strategy.save(self.out / "checkpoint", model, progress, optimizer, scheduler)
        acc.wait_for_everyone()

    def _track(self, scalars: dict) -> None:
        if self.config.report_to != "none" and scalars:
            self.accelerator.log(scalars, step=self.state.global_step)

    def _evaluate(self, model, label: str) -> None:
        if not self.built.eval_data:
            return
        with autocast(self.precision, self.accelerator.device):
            losses = self._eval_losses(model)
        self.state.eval_log.append({"after": label, "loss": losses})
        self._track({f"eval/{name}": value for name, value in losses.items()})
        self.accelerator.print(
            f"eval after {label}: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items())
        )

    def _eval_losses(self, model) -> dict[str, float]:
        return {
            name: mean_label_loss(
                model,
                enc,
                self.built.tokenizer.pad_token_id,
                self.config.batch_size,
                self.accelerator.device,
            )
            for name, enc in self.built.eval_data.items()
        }

    # -- the whole run -------------------------------------------------------------------------
    def setup(self, resume: bool = False, force: bool = False) -> dict | None:
        """Check the run directory, build the model and data (``self.built``) and restore the
        progress of a resumed run (``self.state``); returns the checkpoint's position, or None
        for a fresh run. A finished run being resumed returns its summary under "finished"."""
        cfg, acc = self.config, self.accelerator
        set_seed(cfg.seed)
        selection = load_selection(cfg)
        self.out.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            clean_stale_temps(self.out)  # left by a kill during a checkpoint write
        if resume and not force:
            check_same_config(
                self.out / "config.yaml", dataclasses.replace(cfg, precision=self.precision)
            )
        ckpt = self.out / "checkpoint"
        progress = read_progress(ckpt) if resume else None
        if resume and progress is None and (self.out / "summary.json").is_file():
            acc.print(f"{self.out} is already finished; nothing to resume")
            return {"finished": read_json(self.out / "summary.json")}
        if not resume and acc.is_main_process:
            if (self.out / "final").exists() or ckpt.exists():
                raise CitiError(
                    f"--out: {self.out} already holds a run; use --resume to "
                    f"continue it or choose another directory"
                )
            (self.out / "metrics.jsonl").unlink(missing_ok=True)
        loaded, model, meta, base_keys = build_model(
            cfg, selection, str(acc.device), self.precision
        )
        self.layout = self.strategy.setup_model(model, base_keys)
        if cfg.compile:  # the decoder: the loss runs it, then the LM head on label positions only
            compile_in_place(model.get_decoder())
        encoded, data_summary = build_training_data(cfg, loaded.tokenizer)
        self.built = RunSetup(
            selection=selection,
            model=model,
            tokenizer=loaded.tokenizer,
            meta=meta,
            base_keys=base_keys,
            encoded=encoded,
            data_summary=data_summary,
            eval_data=build_eval_data(cfg, loaded.tokenizer),
            snapshot_steps={},
        )
        self.built.snapshot_steps = self._snapshot_steps()
        if acc.is_main_process:  # the resolved config: precision as it ran, never "auto"
            save_config(
                dataclasses.replace(cfg, precision=self.precision), self.out / "config.yaml"
            )
        self.state = RunState()
        if progress is None:
            return None
        progress = self.strategy.load(ckpt, model, progress)
        self.state = RunState(
            progress["global_step"],
            progress["eval"],
            progress["stage_seconds"],
            progress["trainable"],
            # checkpoints written before the counts existed resume from zero
            progress.get("seen", {"sequences": 0, "tokens": 0, "label_tokens": 0}),
            progress.get("padding", {}),  # absent from checkpoints written before it was counted
        )
        acc.print(f"resuming at stage {progress['stage']}, micro-batch {progress['micro']}")
        return progress

    def run(self, resume: bool = False, force: bool = False) -> dict:
        """Train every stage. ``resume`` continues the run in ``out`` (refused when its saved
        config differs from this one, unless ``force``)."""
        progress = self.setup(resume, force)
        if progress is not None and "finished" in progress:
            return progress["finished"]
        if self.config.report_to == "none":
            return self._train(progress)
        resolved = dataclasses.replace(self.config, precision=self.precision)
        self.accelerator.init_trackers(
            trackers.PROJECT,
            config=trackers.hyperparameters(resolved),
            init_kwargs=trackers.init_kwargs(self.config.report_to, self.out),
        )
        try:
            return self._train(progress)
        finally:  # flushes and closes the trackers, also on a pause or an error
            self.accelerator.end_training()

    def _train(self, progress: dict | None) -> dict:
        cfg, acc = self.config, self.accelerator
        model, ckpt = self.built.model, self.out / "checkpoint"
        start_stage = progress["stage"] if progress else 0
        start_micro = progress["micro"] if progress else 0
        if progress is None and self.strategy.evaluates:
            self._evaluate(model, "base")
        stages = cfg.stages()
        for index in range(start_stage, len(stages)):
            stage = stages[index]
            for callback in self.on_stage_start:
                callback(stage, model)
            t0 = time.perf_counter()
            backward = not self._forward_only(stage, model)
            with training_attention(model, self.precision, acc.device, backward):
                self.state.trainable[stage.name] = self._run_stage(
                    index,
                    stage,
                    model,
                    start_micro if index == start_stage else 0,
                    ckpt if progress is not None and index == start_stage else None,
                )
            if self.paused:  # at max_steps, with a checkpoint to resume from
                return {"paused_at_step": self.state.global_step, "checkpoint": str(ckpt)}
            self.state.stage_seconds[stage.name] = round(
                self.state.stage_seconds.get(stage.name, 0) + time.perf_counter() - t0, 2
            )
            if self.strategy.evaluates:
                self._evaluate(model, stage.name)
            for callback in self.on_stage_end:
                callback(stage, model)
            self._checkpoint({"stage": index + 1, "micro": 0}, model)
        acc.wait_for_everyone()
        summary = run_summary(cfg, self.state, self.built, self.precision, model, self.layout)
        state = self.strategy.gather(model)
        if acc.is_main_process:
            save_adapter(model, self.out / "final", self.built.meta, self.built.base_keys, state)
            write_json_atomic(self.out / "summary.json", summary)
            shutil.rmtree(ckpt, ignore_errors=True)
        acc.wait_for_everyone()
        return summary
