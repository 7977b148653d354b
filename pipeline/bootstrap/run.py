"""`run_bootstrap`: expert iteration (STaR, ReST) for both role adapters, without a teacher.

Each round samples chains for the training problems with the current adapters (the batched five-stage chain
of `pipeline.chain`, both roles, as the rollout runs it), keeps the chains whose final code passes the
problem's own tests in the sandbox and the generated tests that are valid on the reference
(`pipeline.bootstrap.filters`), and fine-tunes each adapter on its own kept samples with TRL's `SFTTrainer`
and the warm start's assistant-only labels. The next round samples with the adapters this one saved.

A round is written to `<output_dir>/.round-<k>.partial/` and renamed to `round-<k>/` once complete (rename is
atomic), so a folder `round-<k>` is a finished round and a rerun with `resume=True` continues after the
last one; an interrupted round is redone from scratch, with the same seed, hence the same samples.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers.trainer_utils import SaveStrategy
from trl import SFTConfig, SFTTrainer

from prompts.templates import load_templates

from prompts.roles import ROLES
from pipeline.bootstrap.config import BootstrapConfig, BootstrapError
from pipeline.bootstrap.data import (
    discriminator_example, discriminator_groups, generator_example, write_jsonl,
)  # fmt: skip
from pipeline.bootstrap.filters import (
    GENERATOR_REASONS, Tally, TestRecord, generated_tests, judge_chains, judge_tests, rationales, seed_tests,
    spread_over_stages,
)  # fmt: skip
from pipeline.chain import Chain, ChainConfig, generate_chains
from pipeline.chain.partial import PartialBatches
from pipeline.models import ModelConfig
from pipeline.models.policies import Policies, load_policies
from pipeline.warmstart import adapter_digest, assistant_only_dataset

logger = logging.getLogger(__name__)

ROUND_PREFIX = "round-"
SUMMARY_FILE = "summary.json"
ADAPTERS_DIR = "adapters"
FINAL_DIR = "final"
RECORD_FILE = "bootstrap.json"

Sampled = tuple[Mapping[str, Any], int, Chain]  # a problem, its sample index, the chain sampled for it


def round_dir(output_dir: Path, k: int) -> Path:
    return output_dir / f"{ROUND_PREFIX}{k}"


def finished_rounds(output_dir: Path) -> list[int]:
    """Numbers of the complete rounds in ``output_dir`` (folders ``round-<k>`` with their summary)."""
    found = []
    for folder in output_dir.glob(f"{ROUND_PREFIX}*") if output_dir.is_dir() else ():
        number = folder.name[len(ROUND_PREFIX):]
        if number.isdigit() and (folder / SUMMARY_FILE).is_file():
            found.append(int(number))
    return sorted(found)


def check_bootstrap_run(sft_config: SFTConfig) -> bool:
    """The bootstrap's checks of TRL's settings, before anything loads; returns whether to resume after the
    finished rounds of ``output_dir`` (rounds are the unit of resume, never a Trainer checkpoint)."""
    from accelerate import PartialState

    if sft_config.eval_strategy != "no":
        raise BootstrapError(f"eval_strategy {sft_config.eval_strategy!r}: the bootstrap has no eval dataset "
                             "(eval_strategy: 'no'); evaluate its final/ adapters with evaluate.py")
    if sft_config.push_to_hub:
        raise BootstrapError("push_to_hub: push the bootstrap's final/ folder with `python -m pipeline.tools.push`")
    if PartialState().num_processes > 1:
        raise BootstrapError("the bootstrap samples and judges in one process: launch it with --num_processes 1")
    value = sft_config.resume_from_checkpoint
    resume = value is not None and str(value).lower() not in ("", "no", "none", "false")
    if resume and str(value).lower() not in ("latest", "true"):
        raise BootstrapError(f"resume_from_checkpoint {value!r}: the bootstrap resumes by round; pass 'latest' to "
                             "continue after the last finished round of output_dir")
    done = finished_rounds(Path(sft_config.output_dir))
    if done and not resume:
        raise BootstrapError(f"{sft_config.output_dir} already holds finished bootstrap rounds {done}: pass "
                             "--resume_from_checkpoint latest to continue that run, or choose another output_dir")
    sft_config.resume_from_checkpoint = None
    return resume


def round_problems(rows: Sequence[Mapping[str, Any]], config: BootstrapConfig, k: int,
                   seed: int) -> list[Mapping[str, Any]]:
    """Round ``k``'s problems: all of them, or ``max_problems_per_round`` drawn with seed + k (in dataset order).

    ``seed`` is the run's (SFTConfig's ``seed``): round k samples with seed + k too, so a resumed run samples what
    an uninterrupted one would."""
    limit = config.max_problems_per_round
    if limit is None or limit >= len(rows):
        return list(rows)
    chosen = sorted(random.Random(seed + k).sample(range(len(rows)), limit))
    return [rows[i] for i in chosen]


def sample_chains(policies: Policies, problems: Sequence[Mapping[str, Any]], config: BootstrapConfig,
                  seed: int, partial: PartialBatches[Sampled] | None = None) -> list[Sampled]:
    """``samples_per_problem`` chains of every problem, both roles, in batches of ``generation_batch_size``;
    with ``partial``, written after every batch and continued from what it holds (see `sampled_chains_file`)."""
    from transformers import set_seed

    chain_config = ChainConfig(generator_tokens=tuple(config.generator_tokens),
                               discriminator_tokens=tuple(config.discriminator_tokens), temperature=config.temperature,
                               top_p=config.top_p, top_k=0, templates=config.templates)
    wanted = [(row, sample) for row in problems for sample in range(config.samples_per_problem)]
    set_seed(seed)
    policies.model.eval()
    started = time.perf_counter()
    out: list[Sampled] = partial.resume() if partial is not None else []
    for start in range(len(out), len(wanted), config.generation_batch_size):
        batch = wanted[start:start + config.generation_batch_size]
        chains = generate_chains(policies, [dict(row) for row, _ in batch], chain_config, with_tests=True)
        out += [(row, sample, chain) for (row, sample), chain in zip(batch, chains)]
        if partial is not None:
            partial.save(out)
        logger.info("bootstrap: %d/%d chains sampled (%.0f s)", len(out), len(wanted), time.perf_counter() - started)
    return out


def sampled_chains_file(output_dir: Path, k: int) -> Path:
    """Round ``k``'s chains as sampled so far (beside its staging folder, which a rerun removes): a round killed
    after sampling, or in the middle of it, samples only what is missing. Removed once the round is finished."""
    return output_dir / f".{ROUND_PREFIX}{k}.chains.json"


def round_sampling(path: Path, k: int, seed: int, model_config: ModelConfig, config: BootstrapConfig,
                   problems: Sequence[Mapping[str, Any]]) -> PartialBatches[Sampled]:
    """The saved sampling of round ``k``, keyed by everything that decides what it samples: the round's seed and
    problems, the model and its starting adapters, the chain's budgets and sampling, the batches."""
    by_task = {str(row["task_id"]): row for row in problems}
    key = {"round": k, "seed": seed, "problems": list(by_task), "model": asdict(model_config),
           "sampling": {name: getattr(config, name) for name in (
               "samples_per_problem", "generation_batch_size", "generator_tokens", "discriminator_tokens",
               "temperature", "top_p", "templates")}}

    def to_dict(item: Sampled) -> dict[str, Any]:
        row, sample, chain = item
        return {"task_id": str(row["task_id"]), "sample": sample, "chain": chain.to_dict()}

    def from_dict(data: dict[str, Any]) -> Sampled:
        return by_task[data["task_id"]], data["sample"], Chain.from_dict(data["chain"])

    return PartialBatches(path, key, to_dict, from_dict)


def _drop_too_long(dataset: Dataset, examples: list[dict[str, Any]], max_length: int | None,
                   owners: list[list[Any]], tally_of: Callable[[Any], Tally | None]
                   ) -> tuple[Dataset, list[dict[str, Any]]]:
    """Drop examples longer than ``max_length`` tokens (truncation would cut the answer and its end of turn);
    their samples are marked and counted ``too_long`` in the tally ``tally_of(sample)`` they were kept in (None: a
    copy of a sample that stays kept elsewhere, e.g. a seed spread over stages; logged, not counted)."""
    if max_length is None:
        return dataset, examples
    keep = []
    for index, ids in enumerate(dataset["input_ids"]):
        if len(ids) <= max_length:
            keep.append(index)
            continue
        for record in owners[index]:
            record.kept, record.reason, record.detail = False, "too_long", f"{len(ids)} tokens > {max_length}"
            tally = tally_of(record)
            if tally is None:
                logger.info("bootstrap: a spread copy of %s's test at stage %d is too long (%s)", record.task_id,
                            record.stage, record.detail)
                continue
            tally.kept -= 1
            tally.drop("too_long")
    return dataset.select(keep), [examples[i] for i in keep]


def train_adapter(policies: Policies, role: str, dataset: Dataset, sft_config: SFTConfig,
                  folder: Path) -> dict[str, Any]:
    """Fine-tune ``role``'s adapter on ``dataset`` (``input_ids`` + assistant-only ``labels``) with TRL's
    SFTTrainer; the other role's adapter is checked untouched. No checkpoints: the round is the unit of resume."""
    other = next(r for r in ROLES if r != role)
    model = policies.activate(role)
    tokenizer = policies.tokenizer
    untouched, before = adapter_digest(model, other), adapter_digest(model, role)
    args = copy.deepcopy(sft_config)
    args.output_dir = str(folder / f"sft-{role}")
    args.save_strategy = SaveStrategy.NO  # the enum, as TrainingArguments' own __post_init__ leaves it
    args.resume_from_checkpoint = None
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    if adapter_digest(model, other) != untouched:
        raise RuntimeError(f"training the {role} adapter changed the {other} adapter")
    trainer.state.save_to_json(str(folder / f"trainer_state_{role}.json"))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    shutil.rmtree(folder / f"sft-{role}", ignore_errors=True)  # empty without checkpoints; logs live above
    after = adapter_digest(model, role)
    if after == before:  # e.g. every step inside a warmup at learning rate 0
        logger.warning("bootstrap: %d %s steps left its adapter unchanged (learning rate 0 throughout?)",
                       trainer.state.global_step, role)
    model.eval()
    return {"trained": True, "examples": len(dataset), "steps": trainer.state.global_step,
            "mean_train_loss": result.training_loss, "final_loss": losses[-1] if losses else None,
            "adapter_before": before, "adapter_after": after, "changed": before != after}


def _tally_sum(*tallies: Tally) -> dict[str, Any]:
    dropped: Counter = Counter()
    for tally in tallies:
        dropped.update(tally.dropped)
    kept = sum(t.kept for t in tallies)
    return {"judged": kept + sum(dropped.values()), "kept": kept, "dropped": dict(sorted(dropped.items()))}


def run_round(k: int, model_config: ModelConfig, sft_config: SFTConfig, config: BootstrapConfig,
              rows: Sequence[Mapping[str, Any]], folder: Path) -> dict[str, Any]:
    """One round into ``folder``: sample, judge, write the data, train both adapters, save them; the summary."""
    from accelerate import PartialState
    from sandbox import Sandbox

    started = time.perf_counter()
    templates = load_templates(config.templates)
    problems = round_problems(rows, config, k, sft_config.seed)
    by_task = {str(row["task_id"]): row for row in problems}
    policies = load_policies(model_config, trust_remote_code=sft_config.trust_remote_code)
    if not model_config.load_in_4bit:
        policies.model.to(PartialState().device)
    partial = round_sampling(sampled_chains_file(folder.parent, k), k, sft_config.seed + k, model_config, config,
                             problems)
    samples = sample_chains(policies, problems, config, seed=sft_config.seed + k, partial=partial)
    sampled_s = time.perf_counter() - started

    chain_of = {(str(row["task_id"]), sample): chain for row, sample, chain in samples}
    with Sandbox() as sandbox:
        chain_records, gen_tally = judge_chains(samples, sandbox, config)
        rationale_tally = Tally(GENERATOR_REASONS)
        if config.rationalize:
            made, rationale_tally = judge_chains(rationales(samples, chain_records, config), sandbox, config,
                                                 source="rationalized")
            chain_records += made
        test_records = generated_tests(samples)
        test_tally = judge_tests(test_records, by_task, sandbox, config)
        seeds: list[TestRecord] = []
        seed_tally = Tally(test_tally.reasons)
        if config.seed_with_own_tests and (k == 1 or config.seed_every_round):
            seeds = seed_tests(problems, test_records)
            seed_tally = judge_tests(seeds, by_task, sandbox, config)
    # The judged seeds are what discriminator.jsonl and the tally count; their spread copies only shape examples.
    seed_targets = spread_over_stages(seeds) if config.seed_every_stage else seeds
    judged_s = time.perf_counter() - started - sampled_s

    # Generator examples: the kept chains.
    kept_chains = [r for r in chain_records if r.kept]
    gen_examples = [generator_example(by_task[r.task_id], r, templates) for r in kept_chains]
    gen_tokens = policies.tokenizer
    gen_data = assistant_only_dataset(Dataset.from_list(gen_examples), gen_tokens) if gen_examples else None
    if gen_data is not None:
        gen_data, gen_examples = _drop_too_long(
            gen_data, gen_examples, sft_config.max_length, [[r] for r in kept_chains],
            lambda record: rationale_tally if record.source == "rationalized" else gen_tally)

    # Discriminator examples: per chain and stage, its kept tests (seeded ones on sample 0: at stage 1, or one per
    # stage with seed_every_stage).
    groups = discriminator_groups([*test_records, *seed_targets])
    disc_examples, owners = [], []
    for (task_id, sample, stage, _), records in groups.items():
        chain = chain_of[(task_id, sample)]
        disc_examples.append(discriminator_example(by_task[task_id], chain.stage_texts, chain.test_texts, stage,
                                                   [r.test for r in records], templates))
        owners.append(records)
    disc_tokens = policies.tokenizer
    disc_data = assistant_only_dataset(Dataset.from_list(disc_examples), disc_tokens) if disc_examples else None
    if disc_data is not None:
        disc_data, disc_examples = _drop_too_long(
            disc_data, disc_examples, sft_config.max_length, owners,
            lambda record: (None if seed_targets is not seeds else seed_tally) if record.source == "own_tests"
            else test_tally)

    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "generator.jsonl", (r.to_dict() for r in chain_records))
    write_jsonl(folder / "discriminator.jsonl", (r.to_dict() for r in [*test_records, *seeds]))
    write_jsonl(folder / "sft_generator.jsonl", gen_examples)
    write_jsonl(folder / "sft_discriminator.jsonl", disc_examples)

    training: dict[str, Any] = {}
    for role, wanted, data in (("generator", config.train_generator, gen_data),
                               ("discriminator", config.train_discriminator, disc_data)):
        if not wanted:
            training[role] = {"trained": False, "why": f"train_{role} is off"}
        elif data is None or len(data) == 0:
            training[role] = {"trained": False, "why": "no kept sample"}
            logger.warning("bootstrap round %d: no %s sample kept, its adapter stays as it was", k, role)
        else:
            training[role] = train_adapter(policies, role, data, sft_config, folder)
    policies.save(folder / ADAPTERS_DIR)

    parser_rejected: Counter = Counter()
    for _, _, chain in samples:
        parser_rejected.update(chain.rejections)
    summary = {
        "round": k,
        "problems": len(problems),
        "samples_per_problem": config.samples_per_problem,
        "chains": len(samples),
        "started_from": model_config.generator_init_adapter or "fresh adapters",
        "generator": {**gen_tally.to_dict(), "examples": len(gen_examples),
                      "solved_problems": len({r.task_id for r in chain_records if r.kept and r.source == "sampled"}),
                      "rationalized": rationale_tally.to_dict(),
                      "training": training["generator"]},
        "discriminator": {**_tally_sum(test_tally, seed_tally), "generated": test_tally.to_dict(),
                          "own_tests": seed_tally.to_dict(), "parser_rejected": dict(sorted(parser_rejected.items())),
                          "examples": len(disc_examples), "training": training["discriminator"]},
        "seconds": {"sampling": round(sampled_s, 1), "judging": round(judged_s, 1),
                    "total": round(time.perf_counter() - started, 1)},
    }
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    del policies
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return summary


def run_bootstrap(model_config: ModelConfig, sft_config: SFTConfig, config: BootstrapConfig,
                  rows: Sequence[Mapping[str, Any]], *, resume: bool = False) -> Path:
    """Run the rounds not yet finished in ``sft_config.output_dir`` and return ``<output_dir>/final`` (the last
    round's ``generator/`` and ``discriminator/`` adapters and ``bootstrap.json``, every round's summary).

    Round 1 starts from ``model_config``'s init adapters (or fresh ones), round k from round k-1's. Finished
    rounds in the folder are an error unless ``resume``, which continues after the last of them.
    """
    from accelerate import PartialState

    if PartialState().num_processes > 1:
        raise BootstrapError("bootstrap samples and judges in one process; launch it with --num_processes 1")
    rows = [dict(row) for row in rows]
    if not rows:
        raise BootstrapError("no training problem given")
    out = Path(sft_config.output_dir)
    done = finished_rounds(out)
    if done and not resume:
        raise BootstrapError(f"{out} already holds finished rounds {done}: pass --resume_from_checkpoint latest to "
                             "continue that run, or choose another output_dir")
    if done and done != list(range(1, len(done) + 1)):
        raise BootstrapError(f"{out} holds rounds {done}: not a consecutive run from round 1")
    for leftover in out.glob(f".{ROUND_PREFIX}*.partial") if out.is_dir() else ():
        logger.info("bootstrap: removing the unfinished %s (its sampled chains are kept)", leftover)
        shutil.rmtree(leftover)
    for k in done:  # a round finished just before its sampled chains were removed
        sampled_chains_file(out, k).unlink(missing_ok=True)
    summaries = [json.loads((round_dir(out, k) / SUMMARY_FILE).read_text()) for k in done]
    for k in range(len(done) + 1, config.rounds + 1):
        previous = round_dir(out, k - 1) / ADAPTERS_DIR
        round_model = model_config if k == 1 else replace(
            model_config, generator_init_adapter=str(previous), discriminator_init_adapter=str(previous))
        staging = out / f".{ROUND_PREFIX}{k}.partial"
        logger.info("bootstrap round %d/%d", k, config.rounds)
        summary = run_round(k, round_model, sft_config, config, rows, staging)
        staging.rename(round_dir(out, k))  # the round is finished from here on
        sampled_chains_file(out, k).unlink(missing_ok=True)
        summaries.append(summary)
        logger.info("bootstrap round %d: generator kept %d of %d chains (+%d rationalized), discriminator kept %d "
                    "of %d tests", k, summary["generator"]["kept"], summary["generator"]["judged"],
                    summary["generator"]["rationalized"]["kept"],
                    summary["discriminator"]["kept"], summary["discriminator"]["judged"])
    last = round_dir(out, len(summaries))  # config.rounds, or more when a longer run is resumed with fewer
    final, staging = out / FINAL_DIR, out / f".{FINAL_DIR}.partial"  # final/ appears whole (the experiment's "done")
    shutil.rmtree(staging, ignore_errors=True)
    for role in ROLES:
        shutil.copytree(last / ADAPTERS_DIR / role, staging / role)
    record = {"base_model": model_config.model_name_or_path or "embedded",
              "started_from": {role: getattr(model_config, f"{role}_init_adapter") or "fresh" for role in ROLES},
              "rounds": len(summaries), "adapters_from": str(last / ADAPTERS_DIR),
              "per_round": [{key: s[key] for key in ("round", "problems", "chains")}
                            | {role: {"kept": s[role]["kept"], "judged": s[role]["judged"],
                                      "dropped": s[role]["dropped"],
                                      "trained": s[role]["training"]["trained"]} for role in ROLES}
                            | {"rationalized_kept": s["generator"].get("rationalized", {}).get("kept", 0)}
                            for s in summaries]}
    (staging / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return final
