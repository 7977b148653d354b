"""Template sets: loading, validation errors that name the file, substitution, stage metadata."""

import shutil
from pathlib import Path

import pytest

from prompts import (
    NUM_STAGES, STAGES, TEMPLATE_FIELDS, TemplateError, available_template_sets, get_stage, load_templates,
)
from prompts.templates import TEMPLATES_ROOT, Template


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    """A writable copy of the default set."""
    target = tmp_path / "mine"
    shutil.copytree(TEMPLATES_ROOT / "default", target)
    return target


def test_stage_metadata():
    assert [s.id for s in STAGES] == list(range(1, NUM_STAGES + 1)) == [1, 2, 3, 4, 5]
    assert get_stage(5).key == "code" and get_stage("pseudocode").id == 3
    with pytest.raises(ValueError, match="unknown stage"):
        get_stage(6)


def test_default_set_loads_with_every_file():
    templates = load_templates()
    assert "default" in available_template_sets()
    assert len(templates.generator) == len(templates.discriminator) == NUM_STAGES
    assert set(TEMPLATE_FIELDS) == {p.name for p in (TEMPLATES_ROOT / "default").glob("*.txt")}
    for stage in STAGES:
        assert templates.generator_stage(stage.id).name == f"generator_stage{stage.id}.txt"


def test_code_stage_and_direct_ask_for_the_same_answer_format():
    """SFT warm start (direct) must teach the format the code stage asks for."""
    templates = load_templates()
    code_stage = templates.generator_stage(5).text.splitlines()[-1]
    assert "```python" in code_stage
    assert templates.direct.text.splitlines()[-1] == code_stage


def test_substitution_is_single_pass_and_keeps_braces_verbatim():
    template = Template.parse("t.txt", "A {problem} B {{literal}} C {not-a-field} {}")
    problem = "return {x: {problem}} for {entry_point}"
    assert template.render(problem=problem) == f"A {problem} B {{literal}} C {{not-a-field}} {{}}"
    assert template.fields == {"problem"}
    with pytest.raises(KeyError, match="t.txt"):
        template.render()


def test_user_directory_is_loaded_and_used(template_dir: Path):
    (template_dir / "generator_stage3.txt").write_text("PSEUDO for {entry_point} ({stage_name})\n")
    templates = load_templates(template_dir)
    assert templates.source == str(template_dir)
    text = templates.generator_stage(3).render(entry_point="f", stage_name="Pseudocode", problem="",
                                               signature="", stage_id=3, num_stages=5)
    assert text == "PSEUDO for f (Pseudocode)"


def test_missing_file_is_named(template_dir: Path):
    (template_dir / "discriminator_stage4.txt").unlink()
    with pytest.raises(TemplateError, match="missing files: discriminator_stage4.txt"):
        load_templates(template_dir)


def test_unknown_placeholder_is_named_with_its_file(template_dir: Path):
    (template_dir / "generator_stage2.txt").write_text("Stage {stage_id}: use {problme}\n")
    with pytest.raises(TemplateError, match=r"generator_stage2.txt: unknown placeholders \{problme\}"):
        load_templates(template_dir)


def test_placeholder_not_allowed_in_that_file(template_dir: Path):
    (template_dir / "system_generator.txt").write_text("Solve {problem}\n")
    with pytest.raises(TemplateError, match=r"system_generator.txt: unknown placeholders \{problem\}"):
        load_templates(template_dir)


def test_required_placeholders(template_dir: Path):
    (template_dir / "generator_stage1.txt").write_text("Think about it.\n")
    (template_dir / "discriminator_stage3.txt").write_text("Write tests.\n")
    with pytest.raises(TemplateError) as info:
        load_templates(template_dir)
    message = str(info.value)
    assert "generator_stage1.txt: must use placeholders {problem}" in message
    assert "discriminator_stage3.txt: must use placeholders {stage_output}" in message


def test_typo_file_empty_file_and_bad_encoding_are_reported_together(template_dir: Path):
    (template_dir / "generater_stage1.txt").write_text("x")
    (template_dir / "direct.txt").write_text("  \n")
    (template_dir / "system_direct.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(TemplateError) as info:
        load_templates(template_dir)
    message = str(info.value)
    assert "unexpected files (typo?): generater_stage1.txt" in message
    assert "direct.txt: empty" in message
    assert "system_direct.txt: cannot read" in message


def test_unknown_set_name_or_path(tmp_path: Path):
    with pytest.raises(TemplateError, match="neither a packaged set"):
        load_templates("no_such_set")
    with pytest.raises(TemplateError, match="neither a packaged set"):
        load_templates(tmp_path / "absent")


def test_reply_starts_of_the_default_set_open_the_code_block_the_code_stage_asks_for():
    """The code stage's reply starts with the fence its template asks for (prefilled; the 135M model otherwise
    repeats its stage-1 answer as its code: 1 of 40 HumanEval+ replies parsed, 40 of 40 with the fence)."""
    templates = load_templates()
    assert templates.generator_start(5) == "```python\n"
    assert [templates.generator_start(k) for k in range(1, 5)] == [""] * 4
    assert "```python" in templates.generator_stage(5).text
    # every discriminator reply starts an assert (without it the model answered with code, not tests: 8 tests in
    # 200 replies on the first 40 HumanEval+ tasks, 3 valid; with it 62 tests, 18 valid, on 12 tasks instead of 3)
    assert [templates.discriminator_start(k) for k in range(1, 6)] == ["```python\nassert"] * 5


def test_reply_starts_are_optional_and_their_errors_named(template_dir: Path):
    (template_dir / "reply_starts.json").unlink()
    templates = load_templates(template_dir)
    assert templates.generator_starts == templates.discriminator_starts == ("",) * NUM_STAGES
    (template_dir / "reply_starts.json").write_text('{"generator": ["a", "b", "c", "d", "e\\n"]}')
    templates = load_templates(template_dir)
    assert templates.generator_start(5) == "e\n" and templates.discriminator_start(1) == ""
    for text, complaint in (('{"generator": ["x"]}', "'generator' must be a list of 5 strings"),
                            ('{"judge": []}', "keys 'generator' and/or 'discriminator'"),
                            ('["x"]', "keys 'generator' and/or 'discriminator'"),
                            ('{"generator": ', "reply_starts.json: cannot read")):
        (template_dir / "reply_starts.json").write_text(text)
        with pytest.raises(TemplateError, match=complaint.replace("(", r"\(")):
            load_templates(template_dir)
