"""End to end: `train.py` in `job: bootstrap` through `accelerate launch` on CPU, the embedded SmolLM2-135M-Instruct,
two rounds on three easy HumanEval-mini problems with tiny budgets, then a resume of an interrupted round 2.

Checked from the files the rounds saved, independently of the code that wrote them (the sandbox runs again
here): every generator example trained on holds code that passes its problem's own tests (a rationale, made
for each problem no sampled chain solved, holds the model's own stages and the reference), every test in a
discriminator example passes on the reference, names the function and fails on a stand-in; every sampled
chain and generated test is in the round's data, kept or dropped, and the summary's counts per reason are
those of the data; every judged chain's verdict is the sandbox's on its code, kept or dropped; an adapter trained
in a round differs from the one the round started from; a resumed run redoes only the unfinished round, from the
adapters the finished one saved (compared tensor by tensor).

Which samples pass depends on the CPU's floating point (sampling at temperature 0.5), so no assertion needs a
sample to pass: the filters are checked both ways on whatever was sampled, and what must train does so whatever
the samples are: the discriminator in every round, on each problem's own tests where none of its generated tests
is valid (seeded in every round); the generator exactly when it has examples (a passing chain, or a rationale).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

import datasets_build
from pipeline.bootstrap import GENERATOR_REASONS, TEST_REASONS
from prompts.checks import StandIns, never_calls, stand_ins
from prompts.parsing import extract_code
from prompts.testcases import dedup_key, extract_tests
from sandbox import Job, Sandbox
from test_train_e2e import adapter, changed, launch

PROBLEMS = 3     # add, subtract, multiply: the base model's code stage gets them right about half the time
SAMPLES = 2
STEPS = 1        # per role and round: enough to move an adapter; each step costs ~8 s on 2 cores
ROLES = ("generator", "discriminator")
RAN = {"duplicate": "passed", "over_quota": "passed", "code_failed": "failed", "code_error": "error",
       "code_timeout": "timeout"}  # drop reasons given after the sandbox ran a chain's code, and its verdict


def _run(recipe: Path, log: Path, *extra: str) -> str:
    process = launch(recipe, log, *extra, num_processes=1)
    code = process.wait(timeout=600)
    text = log.read_text()
    assert code == 0, text[-4000:]
    return text


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    data = tmp_path_factory.mktemp("data") / "built"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(data), progress=False))
    problems = datasets_build.load_problems(data, split="humaneval_mini_test").to_list()[:PROBLEMS]
    return data, {row["task_id"]: row for row in problems}


@pytest.fixture(scope="module")
def run(rows, tmp_path_factory) -> tuple[Path, Path, str]:
    data, _ = rows
    folder = tmp_path_factory.mktemp("bootstrap")
    out = folder / "run"
    recipe = folder / "bootstrap.yaml"
    recipe.write_text(yaml.safe_dump({
        "job": "bootstrap", "dataset_dir": str(data), "train_splits": ["humaneval_mini_test"], "eval_splits": [],
        "allow_contamination": True, "max_train_problems": PROBLEMS, "seed_every_round": True, "seed_every_stage": True,
        "rounds": 2, "samples_per_problem": SAMPLES, "rationalize": True, "temperature": 0.5, "generation_batch_size": PROBLEMS * SAMPLES,
        # Reasoning stages of 16 tokens: with 4 or 8 the model copies its cut-off answers into the code stage
        # (measured: no code at all); 96 tokens hold a small function. The discriminator answers stage 1 only.
        "generator_tokens": [16, 16, 16, 16, 96], "discriminator_tokens": [24, 1, 1, 1, 1],
        "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "lora_target_modules": ["q_proj", "v_proj"],
        "max_steps": STEPS, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "warmup_steps": 0, "max_length": 2048,
        # fp32, not the CPU's bf16: the budgets were chosen so that something passes, measured in fp32
        "torch_threads": 1, "use_cpu": True, "dtype": "float32", "bf16": False, "activation_checkpointing": False,
        "output_dir": str(out), "logging_steps": 1, "report_to": "none", "seed": 0,
    }))  # fmt: skip
    return recipe, out, _run(recipe, folder / "run.log")


@pytest.mark.slow
def test_two_rounds_train_only_on_passing_chains_and_valid_tests(rows, run):
    _, by_task = rows
    recipe, out, text = run
    assert f"adapters saved: {out / 'final' / 'generator'}" in text
    assert sorted(p.name for p in out.iterdir() if "round" in p.name) == ["round-1", "round-2"]  # no .partial left
    summaries = [json.loads((out / f"round-{k}" / "summary.json").read_text()) for k in (1, 2)]
    jobs, expected = [], []  # what the sandbox must say here, independently of the run
    for k, summary in enumerate(summaries, start=1):
        folder = out / f"round-{k}"

        # Every sampled chain is in the data, kept or dropped with a known reason, and counted as it says.
        records = _jsonl(folder / "generator.jsonl")
        chains = [c for c in records if c["source"] == "sampled"]
        rationales = [c for c in records if c["source"] == "rationalized"]
        assert len(chains) == summary["chains"] == PROBLEMS * SAMPLES
        assert len(records) == len(chains) + len(rationales)
        for judged, tally in ((chains, summary["generator"]), (rationales, summary["generator"]["rationalized"])):
            assert all(c["kept"] == (c["reason"] is None) for c in judged)
            assert {c["reason"] for c in judged if not c["kept"]} <= set(GENERATOR_REASONS)
            assert tally["dropped"] == dict(Counter(c["reason"] for c in judged if not c["kept"]))
            assert tally["kept"] == sum(c["kept"] for c in judged)

        # A rationale for each problem (and only those) none of whose sampled chains was kept: the model's own
        # stages 1-4 of one of its samples, and the reference as the code.
        solved = {c["task_id"] for c in chains if c["kept"]}
        assert sorted(r["task_id"] for r in rationales) == sorted(set(by_task) - solved)
        for rationale in rationales:
            own = [c["stage_texts"][:4] for c in chains if c["task_id"] == rationale["task_id"]]
            assert rationale["stage_texts"][:4] in own
            assert rationale["final_code"] == by_task[rationale["task_id"]]["reference_solution"]

        # Every chain that was run (sampled or a rationale) got the sandbox's verdict on its code, kept or dropped:
        # kept, duplicate and over-quota chains pass the problem's own tests, the others fail them as they say.
        for chain in records:
            if chain["kept"] or chain["reason"] in RAN:
                row = by_task[chain["task_id"]]
                jobs.append(Job(program=chain["final_code"], tests=tuple(row["tests"]), entry_point=row["entry_point"],
                                timeout=3.0))  # the bootstrap's test_timeout_s
                expected.append((f"{chain['source']} chain {chain['task_id']}/{chain['sample']}",
                                 RAN.get(chain["reason"], "passed")))

        # Only passing chains became generator examples: their stage-5 code passes the problem's own tests.
        examples = _jsonl(folder / "sft_generator.jsonl")
        kept = summary["generator"]["kept"] + summary["generator"]["rationalized"]["kept"]
        assert len(examples) == summary["generator"]["examples"] == kept
        kept_code = Counter((c["task_id"], c["final_code"].strip()) for c in records if c["kept"])
        for example in examples:
            row = by_task[example["task_id"]]
            code = extract_code(example["completion"][-1]["content"], row["entry_point"]).code
            assert (example["task_id"], code.strip()) in kept_code
            jobs.append(Job(program=code, tests=tuple(row["tests"]), entry_point=row["entry_point"]))
            expected.append(("generator example", "passed"))

        # Every generated test is in the data, kept or dropped with a known reason; counts match.
        tests = _jsonl(folder / "discriminator.jsonl")
        assert all(t["kept"] == (t["reason"] is None) for t in tests)
        assert {t["reason"] for t in tests if not t["kept"]} <= set(TEST_REASONS)
        disc = summary["discriminator"]
        assert disc["dropped"] == dict(Counter(t["reason"] for t in tests if not t["kept"]))
        assert disc["kept"] == sum(t["kept"] for t in tests)
        assert disc["generated"]["judged"] == sum(t["source"] == "generated" for t in tests)
        # Seeding in every round: the problems without a valid generated test lend their own tests, once each in
        # the data, and become examples at every stage (one assert per stage).
        valid_generated = {t["task_id"] for t in tests if t["source"] == "generated" and t["kept"]}
        seeded = {t["task_id"] for t in tests if t["source"] == "own_tests"}
        assert seeded == set(by_task) - valid_generated
        assert disc["own_tests"]["judged"] == sum(t["source"] == "own_tests" for t in tests)

        # Only valid tests became discriminator examples: each passes on the reference, names the function,
        # and fails on one of the stand-ins.
        kept_tests = {(t["task_id"], dedup_key(t["test"])) for t in tests if t["kept"]}
        disc_examples = _jsonl(folder / "sft_discriminator.jsonl")
        assert len(disc_examples) == disc["examples"]
        seeded_valid = {t["task_id"] for t in tests if t["source"] == "own_tests" and t["kept"]}
        assert seeded_valid == seeded  # the problems' own tests pass on their references and fail on the stand-ins
        for task_id in seeded_valid:
            assert {e["stage"] for e in disc_examples if e["task_id"] == task_id} == {1, 2, 3, 4, 5}
        for example in disc_examples:
            row = by_task[example["task_id"]]
            written = extract_tests(example["completion"][-1]["content"], row["entry_point"]).tests
            assert written and all((example["task_id"], dedup_key(t)) in kept_tests for t in written)
            for test in written:
                assert not never_calls(test, row["entry_point"], row["reference_solution"])
                jobs.append(Job(program=row["reference_solution"], tests=(test,), entry_point=row["entry_point"]))
                expected.append(("test on the reference", "passed"))
                standing = stand_ins(row["reference_solution"], row["entry_point"])
                for program in standing.programs:
                    jobs.append(Job(program=program, tests=(test,), entry_point=row["entry_point"]))
                expected.append(("test on the stand-ins", standing))

    with Sandbox() as sandbox:
        results = iter(sandbox.run_many(jobs))
    for what, verdict in expected:
        if isinstance(verdict, StandIns):
            assert not verdict.vacuous([next(results).status == "passed" for _ in verdict.programs]), what
        else:
            assert next(results).status == verdict, what

    # Whatever was sampled, the discriminator trains in every round (each problem lends a valid generated test or
    # its own tests); a role trains exactly when it has examples, and an adapter that trained in a round differs
    # from the one the round started from.
    assert all(summary["discriminator"]["training"]["trained"] for summary in summaries)
    started = {role: None for role in ROLES}  # round 1 starts from fresh adapters: LoRA B = 0
    for k, summary in enumerate(summaries, start=1):
        for role in ROLES:
            weights = adapter(out / f"round-{k}" / "adapters", role)
            trained = summary[role]["training"]["trained"]
            assert trained == (summary[role]["examples"] > 0)
            if started[role] is None:
                assert any(v.any() for n, v in weights.items() if "lora_B" in n) == trained
            else:
                assert changed(started[role], weights) == trained
            if trained:
                assert summary[role]["training"]["steps"] == STEPS and summary[role]["training"]["changed"]
            started[role] = weights
    final = json.loads((out / "final" / "bootstrap.json").read_text())
    assert final["rounds"] == 2 and final["per_round"][1]["generator"]["kept"] == summaries[1]["generator"]["kept"]


@pytest.mark.slow
def test_a_resumed_run_redoes_only_the_unfinished_round_from_the_saved_adapters(run, tmp_path):
    recipe, first, _ = run
    out = tmp_path / "run"
    shutil.copytree(first, out)
    (out / "round-2").rename(out / ".round-2.partial")  # as if killed before round 2 was complete
    (out / ".round-2.partial" / "summary.json").unlink()
    # One sample per problem keeps this second run short. Round 2 must start from round 1's saved adapters: it
    # trains at learning rate 0 here, so the adapters it saves are those it started from, tensor for tensor.
    text = _run(recipe, tmp_path / "resume.log", "--output_dir", str(out), "--resume_from_checkpoint", "latest",
                "--samples_per_problem", "1", "--learning_rate", "0")
    assert "bootstrap round 1/2" not in text and "bootstrap round 2/2" in text
    assert not (out / ".round-2.partial").exists()
    assert (out / "round-1" / "summary.json").read_text() == (first / "round-1" / "summary.json").read_text()
    redone = json.loads((out / "round-2" / "summary.json").read_text())
    assert redone["samples_per_problem"] == 1 and redone["chains"] == PROBLEMS
    assert redone["started_from"] == str(out / "round-1" / "adapters")
    assert redone["discriminator"]["training"]["trained"]  # seeded in every round: round 2 ran its training
    for role in ROLES:
        started, saved = adapter(first / "round-1" / "adapters", role), adapter(out / "round-2" / "adapters", role)
        assert started.keys() == saved.keys() and not changed(started, saved), role
    # Round 1 trained the discriminator (always: see above), so fresh adapters would not pass for its saved ones.
    assert any(v.any() for n, v in adapter(first / "round-1" / "adapters", "discriminator").items() if "lora_B" in n)
    assert json.loads((out / "final" / "bootstrap.json").read_text())["rounds"] == 2

    # A finished run resumed again does nothing but rewrite final/ from its last round.
    text = _run(recipe, tmp_path / "again.log", "--output_dir", str(out), "--resume_from_checkpoint", "latest")
    assert "bootstrap round" not in text.replace("bootstrap rounds", "")
    assert not changed(adapter(out / "round-2" / "adapters", "generator"), adapter(out / "final", "generator"))
