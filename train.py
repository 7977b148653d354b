"""Train the generator and discriminator adapters with TRL's GRPOTrainer on execution rewards, or
warm-start the generator adapter with TRL's SFTTrainer first (a recipe with ``job: sft``), or bootstrap
both adapters on their own verified samples (``job: bootstrap``, expert iteration).

    accelerate launch train.py --config configs/smoke.yaml [--any_field value ...]
    accelerate launch train.py --config configs/sft_warmstart.yaml          # job: sft
    accelerate launch train.py --config configs/bootstrap.yaml              # job: bootstrap
    accelerate launch train.py --config configs/smoke.yaml --generator_init_adapter outputs/sft_warmstart/final

Each job reads top to bottom: parse, check (before anything heavy loads), build, train, save; the parts live in
their packages (recipe dataclasses: ``pipeline.training.config``; data: ``datasets_build.selection``; the end
of a run: ``pipeline.training.finish``). docs/training.md, docs/warmstart.md and docs/bootstrap.md explain them.
"""

from __future__ import annotations

from pipeline.quiet import quiet_third_party

quiet_third_party()  # before the imports below load bitsandbytes, TRL and transformers

import contextlib
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from accelerate import PartialState
from datasets import Dataset
from trl import GRPOConfig, SFTConfig

import datasets_build
from datasets_build import DataSelectionError, TrainingData
from pipeline.models.adapters import check_init_adapters
from pipeline.bootstrap import BootstrapConfig, BootstrapError, check_bootstrap_run, run_bootstrap
from pipeline.models.embedded import cache_root
from pipeline.training.benchmark import BenchmarkCallback
from pipeline.models import ModelConfig, ModelLoadError
from pipeline.models.policies import load_policies
from pipeline.chain.rollout import ProblemIndex, StagedRollout
from pipeline.engines import EngineArguments, VllmServerError, model_stop_ids, open_vllm
from pipeline.models import resolve_model_source
from pipeline.training.adapter_sync import AdapterSyncCallback
from pipeline.training.callbacks import DuelCallback
from pipeline.training.checkpoints import BestTracker, CheckpointError
from pipeline.training.checks import check_rl_run
from pipeline.training.config import (
    BenchmarkArguments, ChainArguments, ConfigError, RLArguments, RunArguments, device_defaults, effective_recipe,
    parse_recipe, recipe_job,
)  # fmt: skip
from pipeline.training.finish import finish_run
from pipeline.training.records import SAMPLES_FILE, RunFiles, SampleLog, run_info, write_run_files
from pipeline.training.replay import ReplayBuffer
from pipeline.training.schedule import ScheduleConfig, ScheduleError
from pipeline.training.state import DuelState
from pipeline.training.trainer import DuelGRPOTrainer
from pipeline.training.guard import CollapseGuard, CollapseGuardConfig
from pipeline.warmstart import RECIPE_DEFAULTS, WarmStartConfig, WarmStartError, check_sft_run, run_warm_start
from rewards import (
    RewardArguments, default_reward_names, get_reward_funcs, get_reward_weights, make_scorer, resolve_names,
)  # fmt: skip

logger = logging.getLogger("train")

# One dataclass per concern, every field once (trust_remote_code, seed: the trainer config's, as in TRL).
RL_TYPES = (TrainingData, RunArguments, RLArguments, ScheduleConfig, ChainArguments, EngineArguments, RewardArguments,
            BenchmarkArguments, GRPOConfig, ModelConfig)
SFT_TYPES = (TrainingData, RunArguments, WarmStartConfig, BenchmarkArguments, SFTConfig, ModelConfig)
BOOTSTRAP_TYPES = (TrainingData, RunArguments, BootstrapConfig, SFTConfig, ModelConfig)
# The warm start's plan (LoRA rank 8, alpha 16; lr 1e-4, 10 % warmup, cosine); the bootstrap's rounds each train a
# few steps and restart the schedule, so no warmup. Recipes and flags override each.
SFT_DEFAULTS: dict[str, Any] = {"lora_r": 8, "lora_alpha": 16, **RECIPE_DEFAULTS}
BOOTSTRAP_DEFAULTS: dict[str, Any] = {**SFT_DEFAULTS, "warmup_steps": 0}
# What each kind of error is called on the console (exit code 2); a check before anything loads is a config error.
ERRORS = {ConfigError: "config error", DataSelectionError: "config error", ModelLoadError: "model error",
          WarmStartError: "warm start error", BootstrapError: "bootstrap error", CheckpointError: "resume error",
          ScheduleError: "resume error", VllmServerError: "vLLM server error"}


@contextmanager
def checks() -> Iterator[None]:
    """Errors raised by the checks of a recipe, before anything loads, are config errors whatever their type."""
    try:
        yield
    except tuple(ERRORS) as err:
        raise ConfigError(str(err)) from err


def parse_config(argv: list[str] | None = None) -> tuple[Any, ...]:
    return parse_recipe(RL_TYPES, argv, device_defaults(sft=False))


def parse_sft_config(argv: list[str] | None = None) -> tuple[Any, ...]:
    return parse_recipe(SFT_TYPES, argv, {**SFT_DEFAULTS, **device_defaults(sft=True)})


def parse_bootstrap_config(argv: list[str] | None = None) -> tuple[Any, ...]:
    return parse_recipe(BOOTSTRAP_TYPES, argv, {**BOOTSTRAP_DEFAULTS, **device_defaults(sft=True)})


def training_problems(data: TrainingData) -> Dataset:
    """The selected, verified training rows; the main process builds the cached datasets, the others wait."""
    state = PartialState()
    folder = datasets_build.dataset_folder(data, cache_root() / "datasets", state.main_process_first,
                                           state.is_main_process)
    return datasets_build.training_problems(data, folder)


def benchmark_callback(bench: BenchmarkArguments, eval_steps: float | None, templates: str,
                       data: TrainingData) -> BenchmarkCallback | None:
    """The benchmark evaluation during training, or None when the recipe turns it off."""
    if not bench.enabled:
        return None
    if bench.bench_eval_steps is None and not eval_steps:
        logger.info("no benchmark evaluation during training: set bench_eval_steps (or eval_steps) to turn it on")
        return None
    source = datasets_build.SourceConfig(use_hub=bench.bench_benchmark == "mbpp", mbpp_file=data.mbpp_file)
    try:
        rows = datasets_build.load_problems(bench.bench_benchmark, config=source,
                                            split="test" if bench.bench_benchmark == "mbpp" else None).to_list()
        return BenchmarkCallback(rows, bench, templates=templates)
    except (datasets_build.DatasetFormatError, ValueError, OSError) as err:
        raise ConfigError(f"benchmark {bench.bench_benchmark}: {err}") from err


def warm_start(argv: list[str]) -> int:
    """SFT of the generator adapter on the verified training rows (pipeline.warmstart); adapters in final/."""
    data, run, warm, bench, training, model_cfg = parse_sft_config(argv)
    with checks():
        check_init_adapters(model_cfg)
        check_sft_run(training)
        benchmark = benchmark_callback(bench, training.eval_steps, warm.templates, data)
        dataset = training_problems(data)
    run.apply(seed=training.seed)
    logger.info("warm start on %d training problems", len(dataset))
    final = run_warm_start(model_cfg, training, warm, list(dataset), callbacks=[benchmark] if benchmark else [])
    if PartialState().is_main_process:
        write_run_files(final, effective_recipe(argv, SFT_TYPES))
        print(f"adapters saved: {final / 'generator'} (warm-started) and {final / 'discriminator'} (untouched)\n"
              f"RL from them: train.py --config configs/smoke.yaml --generator_init_adapter {final} "
              f"--discriminator_init_adapter {final}")
    return 0


def bootstrap(argv: list[str]) -> int:
    """Expert iteration for both adapters (pipeline.bootstrap): rounds in round-<k>/, the last adapters in final/."""
    data, run, boot, training, model_cfg = parse_bootstrap_config(argv)
    with checks():
        check_init_adapters(model_cfg)
        resume = check_bootstrap_run(training)
        dataset = training_problems(data)
    run.apply(seed=training.seed)
    logger.info("bootstrap: %d rounds on %d training problems", boot.rounds, len(dataset))
    final = run_bootstrap(model_cfg, training, boot, list(dataset), resume=resume)
    write_run_files(final, effective_recipe(argv, BOOTSTRAP_TYPES))
    print(f"adapters saved: {final / 'generator'} and {final / 'discriminator'} (after {boot.rounds} bootstrap "
          f"rounds; each round's data in {Path(training.output_dir)}/round-<k>/)\n"
          f"RL from them: train.py --config configs/smoke.yaml --generator_init_adapter {final} "
          f"--discriminator_init_adapter {final}")
    return 0


def train_rl(argv: list[str]) -> int:
    """GRPO on both adapters, phase by phase and stage by stage (docs/training.md); adapters in final/."""
    # Parse and check: everything that can fail without a model fails here.
    data, run, rl, schedule_cfg, chain_args, engine_args, reward_cfg, bench, training, model_cfg = parse_config(argv)
    state = PartialState()
    with checks():
        schedule, resume = check_rl_run(rl, schedule_cfg, training, model_cfg, state.num_processes)
        if engine_args.generation_engine == "vllm" and state.num_processes > 1:
            raise ConfigError("generation_engine: vllm runs with one training process (one server serves it); "
                              "launch with --num_processes 1, or use generation_engine: transformers")
        try:
            reward_names = resolve_names(rl.reward_funcs or default_reward_names(reward_cfg), reward_cfg)
        except ValueError as err:
            raise ConfigError(str(err)) from err
        benchmark = benchmark_callback(bench, training.eval_steps, chain_args.templates, data)
        dataset = training_problems(data)
    run.apply(seed=training.seed)
    for start, end, phase in schedule.segments(training.max_steps):
        logger.info("steps %d-%d: %s, stage %s", start, end, phase.role, phase.train_stage or "all")

    # Model: one frozen base, one LoRA adapter per role (the unified schedule keeps only the generator's).
    policies = load_policies(model_cfg, trust_remote_code=training.trust_remote_code)
    model = policies.model
    if schedule_cfg.schedule == "unified":
        model.delete_adapter("discriminator")
    adapters = {"generator": "generator",
                "discriminator": "generator" if schedule_cfg.schedule == "unified" else "discriminator"}

    with contextlib.ExitStack() as stack:
        engine = None
        if engine_args.generation_engine == "vllm":  # our own server (stopped at the end) or the recipe's URL
            source = resolve_model_source(model_cfg.model_name_or_path)
            engine = stack.enter_context(open_vllm(engine_args.server_config(), source,
                                                   stop=model_stop_ids(source, policies.tokenizer),
                                                   work_dir=Path(training.output_dir) / "vllm"))
        # The duel's state (schedule position, replay buffer, best checkpoint), read by the rollout and the trainer's
        # logs, moved and saved by DuelCallback; the rewards' scorer keeps each scored batch for it (replay, samples).
        output_dir = Path(training.output_dir)
        replay = ReplayBuffer(rl.replay_capacity, ratio=rl.replay_ratio if rl.replay_capacity else 0.0,
                              seed=training.seed)
        duel = DuelState(schedule, replay, BestTracker(output_dir))
        rollout = StagedRollout(ProblemIndex(list(dataset)), chain_args.chain_config(training), duel, adapters,
                                engine=engine, num_generations=training.num_generations)
        scorer = make_scorer(reward_names, reward_cfg, keep_scored=True)  # one scorer: each batch runs once
        reward_funcs = get_reward_funcs(reward_names, reward_cfg, scorer=scorer)
        if training.reward_weights is None:
            training.reward_weights = get_reward_weights(reward_names, reward_cfg)

        # Run records: the effective recipe and what was trained on, copied into every checkpoint and final/.
        recipe = effective_recipe(argv, RL_TYPES)
        info = run_info(model=model_cfg, schedule=schedule_cfg, reward_names=reward_names, data=data,
                        reward_weights=training.reward_weights, train_problems=len(dataset),
                        replay={"capacity": rl.replay_capacity, "ratio": rl.replay_ratio})
        push_repo = training.hub_model_id if training.push_to_hub else None
        training.push_to_hub = False  # final/ is pushed once, by finish_run; not the Trainer's per-checkpoint pushes
        if state.is_main_process:
            write_run_files(output_dir, recipe, info)

        # The trainer and what runs around each step.
        guard = CollapseGuard(CollapseGuardConfig(
            metric=rl.collapse_guard_metric, threshold=rl.collapse_guard_threshold,
            stop_on_collapse=rl.stop_on_collapse, patience=rl.collapse_guard_patience))
        callbacks = [DuelCallback(duel, model, scorer, RunFiles(recipe, info),
                                  SampleLog(output_dir / SAMPLES_FILE, rl.samples_per_step)), guard]
        if engine is not None:  # after DuelCallback: a step's role is known when its end publishes the new adapter
            callbacks.append(AdapterSyncCallback(engine.adapters, model, duel, adapters))
        trainer = DuelGRPOTrainer(model=model, reward_funcs=reward_funcs, args=training, train_dataset=dataset,
                                  processing_class=policies.tokenizer, rollout_func=rollout, callbacks=callbacks,
                                  duel=duel, vllm_sampler=engine is not None)
        if benchmark is not None:
            with checks():
                try:
                    benchmark.attach(trainer)
                except ValueError as err:
                    raise ConfigError(str(err)) from err

        if resume is not None:  # the schedule position must match, the replay buffer comes back, later leftovers go
            duel.resume(resume, output_dir)
        trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
        code = finish_run(output_dir, policies, trainer, guard, recipe=recipe, info=info, push_repo=push_repo,
                          is_main_process=state.is_main_process)
        state.wait_for_everyone()
        return code


def main(argv: list[str] | None = None) -> int:
    """Run the recipe's job; a recipe that cannot work exits with 2 and a message saying what to change."""
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        job = {"sft": warm_start, "bootstrap": bootstrap}.get(recipe_job(argv), train_rl)
        return job(argv)
    except tuple(ERRORS) as err:
        print(f"{next(name for kind, name in ERRORS.items() if isinstance(err, kind))}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
