"""Issue 24's "one name each", checked on the source: the stage-budget default is written once, and the rewards
read the rollout's own record (no second record type in rewards/)."""

from __future__ import annotations

import ast
from pathlib import Path

from prompts.record import RolloutRecord
from prompts.stages import DEFAULT_GENERATOR_TOKENS

REPO = Path(__file__).resolve().parents[1]
SOURCES = [p for pattern in ("*.py", "*.yaml") for p in REPO.rglob(pattern)
           if not {".venv", ".venv-vllm", "outputs", "tests", ".git"} & set(p.relative_to(REPO).parts)]


def test_the_default_stage_budgets_are_written_once():
    literal = ", ".join(map(str, DEFAULT_GENERATOR_TOKENS))
    found = [str(p.relative_to(REPO)) for p in SOURCES if literal in p.read_text(errors="replace")]
    assert found == ["prompts/stages.py"], found


def test_rewards_define_no_second_record_type():
    record_fields = {"final_code", "tests_by_stage", "stage_texts", "reference_solution", "tests", "task_id"}
    for path in (REPO / "rewards").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names = {t.target.id for t in node.body if isinstance(t, ast.AnnAssign) and isinstance(t.target, ast.Name)}
                assert len(names & record_fields) < 3, f"{path.name}: {node.name} mirrors RolloutRecord {names & record_fields}"
    assert {"tests", "reference_solution", "test_setup", "disc_rejections", "replayed"} <= set(RolloutRecord.__dataclass_fields__)
