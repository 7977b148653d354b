"""Every reward component of a batch, per role and per stage, as one flat dict of scalars.

Averages are over the samples a metric applies to (a generator metric over generator rows, a
stage metric over discriminators that wrote tests at that stage); a metric with no sample to
average over is left out rather than logged as a made-up 0.
"""

from __future__ import annotations

from typing import Iterable

from prompts.collapse import chain_text, is_collapsed
from prompts.parsing import safe_parse

from rewards.context import RewardContext

_DISC_COMPONENTS = ("validity", "invalid_pct", "bug_catch_rate", "adversarial", "weighted")
_MUTANT_COMPONENTS = ("mutant_kill_rate", "mutation")


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def _put(out: dict[str, float], name: str, value: float | None) -> None:
    if value is not None:
        out[name] = float(value)


def parses(code: str) -> bool:
    """Whether the final code is syntactically valid Python (empty code is not)."""
    return bool(code.strip()) and safe_parse(code) is not None


def group_metrics(rates: list[tuple[str, float | None]]) -> dict[str, float]:
    """Outcome spread of the GRPO groups among ``(task_id, pass rate on the problem's own tests)`` rows in batch
    order (a group: consecutive rows of one task). ``generator/groups/mixed`` is the share of groups whose pass
    rates differ (only those give the pass rate an advantage); ``generator/groups/solved_<k>`` counts the groups
    in which exactly k samples pass every own test. Rows with an unknown rate (sandbox failure) are skipped."""
    groups: list[list[float]] = []
    last = None
    for task_id, rate in rates:
        if task_id != last:
            groups.append([])
            last = task_id
        if rate is not None:
            groups[-1].append(rate)
    groups = [g for g in groups if g]
    out: dict[str, float] = {}
    if not groups:
        return out
    out["generator/groups/mixed"] = sum(max(g) > min(g) for g in groups) / len(groups)
    for k in range(max(len(g) for g in groups) + 1):
        out[f"generator/groups/solved_{k}"] = float(sum(sum(r == 1.0 for r in g) == k for g in groups))
    return out


def batch_metrics(ctx: RewardContext) -> dict[str, float]:
    """Flat metrics of one batch (names such as ``generator/pass_rate``,
    ``discriminator/validity/stage3``, ``invalid_reasons/duplicate``,
    ``invalid_reasons/stage2/no_call``, ``sandbox/jobs_per_s``)."""
    cfg, samples = ctx.config, ctx.samples
    out: dict[str, float] = {}
    gens = [i for i, s in enumerate(samples) if s.role == "generator"]
    discs = [i for i, s in enumerate(samples) if s.role == "discriminator"]
    stages = range(1, cfg.num_stages + 1)

    hacks = ctx.hack_rewards()
    formats = ctx.format_rewards()
    if gens:
        _put(out, "generator/pass_rate", _mean(ctx.generator_pass_rate(i) for i in gens))
        _put(out, "generator/pass_rate_own", _mean(ctx.generator_pass_rate(i, samples[i].tests) for i in gens))
        scoped = [(i, ctx.valid_tests(i, samples[i].stages_in_scope("cumulative"))) for i in gens]
        _put(out, "generator/pass_rate_generated", _mean(ctx.generator_pass_rate(i, t) for i, t in scoped if t))
        _put(out, "generator/format", _mean(formats[i] for i in gens))
        _put(out, "generator/repetition_reward", _mean(r for r in ctx.repetition_rewards() if r is not None))
        _put(out, "generator/hack_rate", _mean(float(hacks[i] != 0) for i in gens))
        # the final code parses as Python; the chain is degenerate repetition, judged as the evaluation judges it
        # (the whole chain, so a stage pasted into the next ones counts; what the collapse guard watches)
        _put(out, "generator/syntax_valid", _mean(float(parses(samples[i].final_code)) for i in gens))
        _put(out, "generator/collapse_rate", _mean(float(is_collapsed(chain_text(samples[i].stage_texts))) for i in gens))
        _put(out, "generator/repetition/chain", _mean(ctx.chain_repetition_score(i) for i in gens))
        out.update(group_metrics([(samples[i].task_id, ctx.generator_pass_rate(i, samples[i].tests)) for i in gens]))
        for k in stages:
            _put(out, f"generator/repetition/stage{k}", _mean(ctx.repetition_scores(i)[k - 1] for i in gens))
            _put(out, f"generator/nonempty/stage{k}", _mean(float(bool(samples[i].stage_texts[k - 1].strip())) for i in gens))

    if discs:
        scopes = {i: ctx.discriminator(i, samples[i].stages_in_scope(cfg.stage_scope)) for i in discs}
        components = _DISC_COMPONENTS + (_MUTANT_COMPONENTS if ctx.need_mutants else ())
        for name in components:
            _put(out, f"discriminator/{name}", _mean(getattr(scopes[i], name) for i in discs))
        _put(out, "discriminator/format", _mean(formats[i] for i in discs))
        _put(out, "discriminator/hack_rate", _mean(float(hacks[i] != 0) for i in discs))
        _put(out, "discriminator/tests_per_sample", _mean(len(ctx.records[i]) for i in discs))
        for k in stages:
            writers = [i for i in discs if samples[i].tests_by_stage[k - 1]]
            _put(out, f"discriminator/tests/stage{k}", _mean(len(samples[i].tests_by_stage[k - 1]) for i in discs))
            per_stage = [ctx.discriminator(i, (k,)) for i in writers]
            for name in components:
                _put(out, f"discriminator/{name}/stage{k}", _mean(getattr(s, name) for s in per_stage))
        reasons: dict[str, int] = {}
        for i in discs:
            for reason, count in ctx.invalid_reasons(i).items():
                reasons[reason] = reasons.get(reason, 0) + count
        for reason, count in sorted(reasons.items()):
            out[f"invalid_reasons/{reason}"] = float(count)
        for k in stages:  # tests the parser accepted, by the stage they were written after
            by_stage: dict[str, int] = {}
            for i in discs:
                for reason, count in ctx.invalid_reasons(i, stage=k).items():
                    by_stage[reason] = by_stage.get(reason, 0) + count
            for reason, count in sorted(by_stage.items()):
                out[f"invalid_reasons/stage{k}/{reason}"] = float(count)

    tasks = list(ctx.tasks.values())
    _put(out, "data/reference_fails_own_tests", _mean(float(t.reference_fails_own) for t in tasks))
    if ctx.need_mutants:
        _put(out, "mutants/per_task", _mean(len(t.mutants) for t in tasks))
        _put(out, "mutants/killable_per_task", _mean(len(t.killable) for t in tasks))
        with_mutants = [t for t in tasks if t.mutants]
        _put(out, "mutants/equivalent_fraction", _mean(1 - len(t.killable) / len(t.mutants) for t in with_mutants))

    stats = ctx.exec_stats
    out.update({
        "sandbox/jobs": float(stats.jobs),
        "sandbox/tests": float(stats.tests),
        "sandbox/cache_hits": float(stats.cache_hits),
        "sandbox/duplicates": float(stats.duplicates),
        "sandbox/infra_errors": float(stats.infra_errors),
        "sandbox/seconds": stats.seconds,
    })  # fmt: skip
    if stats.seconds > 0:
        out["sandbox/jobs_per_s"] = stats.jobs / stats.seconds
        out["sandbox/tests_per_s"] = stats.tests / stats.seconds
    return out
