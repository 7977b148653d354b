"""HumanEval+ and MBPP+ (EvalPlus) as sources: conversion of the real release files (the copies
datasets_build ships), finding them the way the evalplus package does and then the packaged copy,
the packaged copy's checksum, version checks, building, and contamination with MBPP."""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import math
import sys
import warnings
from collections import Counter
from pathlib import Path

import datasets
import pytest

from datasets_build import (
    COLUMNS,
    FEATURES,
    KNOWN_VERSIONS,
    BuildConfig,
    DatasetFormatError,
    SourceConfig,
    build_with_report,
    dataset_hash,
    find_overlaps,
    load_plus_rows,
    load_problems,
    split_key,
)
from datasets_build.cli import main
from datasets_build import evalplus_release
from datasets_build.evalplus_release import PACKAGED, PACKAGED_SHA256, evalplus_cache_dir, packaged_file
from datasets_build.evalplus_rows import plus_rows
from datasets_build.jsonl import read_records
from datasets_build.schema import make_row
from datasets_build.sources import load_source
from sandbox import SandboxConfig

# The release files tracked in git under datasets_build/data/: missing ones fail these tests, they never skip.
HE_FILE = packaged_file("humaneval+")
MBPP_FILE = packaged_file("mbpp+")
# As published with the release files (sha256 of the .gz; EvalPlus's md5 of the uncompressed JSONL).
HE_SHA256 = "272720b90ac375502c8ed23cd791c2a93dfb22a911641a494da74a426c09f101"
MBPP_SHA256 = "af43697e8791c4c149bdfd6b489d8b5412507551ac20e28a439f650b8225db63"
HE_MD5 = "fe585eb4df8c88d844eeb463ea4d0302"
MBPP_MD5 = "ee43ecabebf20deef4bb776a405ac5b1"
SANDBOX = SandboxConfig(timeout_s=10.0, job_timeout_s=120.0, min_isolation="process")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's own evalplus setup leaks in: no override variables, an empty cache."""
    monkeypatch.delenv("HUMANEVAL_OVERRIDE_PATH", raising=False)
    monkeypatch.delenv("MBPP_OVERRIDE_PATH", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def he_records() -> list[dict]:
    return [record for _, record in read_records(HE_FILE)]


@pytest.fixture(scope="module")
def mbpp_records() -> list[dict]:
    return [record for _, record in read_records(MBPP_FILE)]


@pytest.fixture(scope="module")
def he_rows() -> list[dict]:
    data = load_plus_rows("humaneval+", HE_FILE, use_hub=False)
    assert (data.version, data.md5, data.origin, data.found_by) == ("v0.1.10", HE_MD5, f"file:{HE_FILE}", "given path")
    return data.rows


@pytest.fixture(scope="module")
def mbpp_rows() -> list[dict]:
    data = load_plus_rows("mbpp+", MBPP_FILE, use_hub=False)
    assert (data.version, data.md5) == ("v0.2.0", MBPP_MD5)
    return data.rows


def _damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes) -> Path:
    """``data`` installed as the packaged HumanEval+ copy (in a temporary folder: the tracked file stays as it is)."""
    fake = tmp_path / "package" / HE_FILE.name
    fake.parent.mkdir()
    fake.write_bytes(data)
    real = evalplus_release.packaged_file
    monkeypatch.setattr(evalplus_release, "packaged_file", lambda name: fake if name == "humaneval+" else real(name))
    return fake


def _uncompressed_copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.decompress(source.read_bytes()))
    return target


def _check_common(rows: list[dict], records: list[dict], source: str) -> None:
    assert [r["task_id"] for r in rows] == [r["task_id"] for r in records]
    for row, record in zip(rows, records):
        assert set(row) == set(COLUMNS) and row["source"] == source and row["split"] == "test"
        assert row["tests"], row["task_id"]
        assert row["prompt"] == record["prompt"] and row["entry_point"] == record["entry_point"]
        assert row["reference_solution"] == record["prompt"] + record["canonical_solution"]
        with warnings.catch_warnings():  # MBPP's regexes have invalid escapes such as "\w"
            warnings.simplefilter("ignore", (SyntaxWarning, DeprecationWarning))
            compile(row["reference_solution"], row["task_id"], "exec")
        assert row["signature"].startswith(f"def {row['entry_point']}(") and row["problem"]
        assert row["contract"] == record["contract"] and "$_CONTRACT_$" in row["contract"]
        assert isinstance(row["atol"], float) and row["atol"] == record["atol"]
        assert json.loads(row["base_inputs"]) == record["base_input"]
        plus = json.loads(row["plus_inputs"])
        assert plus == (record["plus_input"] or [])  # MBPP+ Mbpp/793 releases {} for "no inputs"
        assert isinstance(plus, list) and all(isinstance(args, list) for args in plus)


def test_humanevalplus_rows_keep_every_task_input_tolerance_and_contract(he_rows: list[dict], he_records: list[dict]):
    assert len(he_rows) == 164
    _check_common(he_rows, he_records, "humaneval+")
    assert sum(len(json.loads(r["base_inputs"])) for r in he_rows) == 1570
    assert sum(len(json.loads(r["plus_inputs"])) for r in he_rows) == 122683
    atol = {r["task_id"]: r["atol"] for r in he_rows if r["atol"]}
    assert atol == {"HumanEval/2": 1e-06, "HumanEval/4": 1e-06, "HumanEval/32": 0.0001}
    # HumanEval+ keeps HumanEval's check, so its tests are HumanEval's, split the same way.
    humaneval, _ = load_source("humaneval", SourceConfig(use_hub=False))
    assert [r["tests"] for r in he_rows] == [r["tests"] for r in humaneval]
    assert sum(len(r["tests"]) for r in he_rows) == 1133
    first = he_rows[0]
    assert first["signature"] == "def has_close_elements(numbers: List[float], threshold: float) -> bool:"
    assert first["context"] == "from typing import List\n" and first["problem"].startswith("Check if in given list")
    assert split_key(first["source"], first["split"]) == "humanevalplus_test"


def test_mbppplus_rows_keep_every_task_input_tolerance_and_contract(mbpp_rows: list[dict], mbpp_records: list[dict]):
    assert len(mbpp_rows) == 378
    _check_common(mbpp_rows, mbpp_records, "mbpp+")
    assert sum(len(json.loads(r["base_inputs"])) for r in mbpp_rows) == 1174
    assert sum(len(json.loads(r["plus_inputs"])) for r in mbpp_rows) == 39841
    by_id = {r["task_id"]: r for r in mbpp_rows}
    assert sorted(t for t, r in by_id.items() if r["atol"]) == sorted(
        f"Mbpp/{n}" for n in (82, 85, 98, 120, 124, 137, 139, 233, 276, 293, 300, 312, 742)
    )
    assert by_id["Mbpp/793"]["plus_inputs"] == "[]"
    # Infinity survives the JSON text (json.dumps writes it, json.loads reads it back).
    assert "Infinity" in by_id["Mbpp/404"]["plus_inputs"]
    assert any(math.isinf(x) for args in json.loads(by_id["Mbpp/404"]["plus_inputs"]) for x in args if isinstance(x, float))
    # The problem is the prompt's description without its example assert; one test per assert.
    two = by_id["Mbpp/2"]
    assert two["problem"] == "Write a function to find the shared elements from the given two lists."
    assert two["signature"] == "def similar_elements(test_tup1, test_tup2):" and two["split"] == "test"
    assert two["tests"][0] == "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"
    assert split_key(two["source"], two["split"]) == "mbppplus_test"
    for row, record in zip(mbpp_rows, mbpp_records):
        asserts = sum(isinstance(s, ast.Assert) for s in ast.parse(record["assertion"]).body)
        assert len(row["tests"]) == asserts and "assert" not in row["problem"], row["task_id"]
    # `import math` of the assertion goes with every test; Mbpp/120 forgot it and gets it too.
    assert all(t.startswith("import math\nassert math.isclose(") for t in by_id["Mbpp/82"]["tests"])
    assert "import math" not in mbpp_records[[r["task_id"] for r in mbpp_records].index("Mbpp/120")]["assertion"]
    assert by_id["Mbpp/120"]["tests"][0].startswith("import math\n")
    assert Counter(r["difficulty"] for r in mbpp_rows).keys() <= {"easy", "medium", "hard"}


def test_the_packaged_copies_are_the_release_files_and_are_read_when_nothing_else_is_set():
    # The bytes shipped are the published ones (this fails, not skips, if a tracked file is missing).
    assert hashlib.sha256(HE_FILE.read_bytes()).hexdigest() == HE_SHA256 == PACKAGED_SHA256["humaneval+"]
    assert hashlib.sha256(MBPP_FILE.read_bytes()).hexdigest() == MBPP_SHA256 == PACKAGED_SHA256["mbpp+"]
    assert HE_FILE.parent == Path(__file__).resolve().parents[1] / "datasets_build" / "data"
    # No file, variable or evalplus cache (the autouse fixture): the packaged copy, with its version.
    he = load_plus_rows("humaneval+", use_hub=False)
    assert (he.origin, he.found_by, he.version, he.md5, len(he.rows)) == (f"file:{HE_FILE}", PACKAGED, "v0.1.10", HE_MD5, 164)
    rows, origin = load_source("mbpp+", SourceConfig(use_hub=False))
    assert len(rows) == 378 and origin == f"file:{MBPP_FILE} (MBPP+ v0.2.0, md5 {MBPP_MD5})"


def test_the_packaged_copies_are_package_data_so_an_installed_wheel_has_them():
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["datasets_build"]
    for path in (HE_FILE, MBPP_FILE):
        assert any(fnmatch.fnmatch(path.relative_to(root / "datasets_build").as_posix(), g) for g in globs), (path, globs)


@pytest.mark.parametrize("damage", ["truncated", "one byte changed", "lfs pointer"])
def test_a_damaged_packaged_copy_is_an_error_naming_it_not_other_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str):
    data = HE_FILE.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        # In the gzip header's mtime: gunzips to the very same text, so only the checksum sees it.
        "one byte changed": data[:4] + bytes([data[4] ^ 1]) + data[5:],
        "lfs pointer": f"version https://git-lfs.github.com/spec/v1\noid sha256:{HE_SHA256}\nsize {len(data)}\n".encode(),
    }[damage]
    fake = _damaged(tmp_path, monkeypatch, damaged)
    for load in (lambda: load_plus_rows("humaneval+", use_hub=True), lambda: load_problems("humaneval+"),
                 lambda: load_plus_rows("humaneval+", fake, use_hub=False)):  # named explicitly: still the packaged copy
        with pytest.raises(DatasetFormatError) as excinfo:
            load()
        message = str(excinfo.value)
        assert message.startswith(f"{fake}: the packaged HumanEval+ v0.1.10 release file is damaged ({len(damaged)} bytes, sha256 ")
        assert f"not the release's {HE_SHA256}); reinstall the package" in message and "\n" not in message


def test_a_copy_outside_the_package_is_judged_by_its_version_not_by_the_packaged_checksum(tmp_path: Path):
    # The same text gzipped anew has another sha256 than the release's .gz: a user's copy is still accepted.
    regzipped = tmp_path / "HumanEvalPlus-v0.1.10.jsonl.gz"
    regzipped.write_bytes(gzip.compress(gzip.decompress(HE_FILE.read_bytes()), mtime=0))
    assert hashlib.sha256(regzipped.read_bytes()).hexdigest() != HE_SHA256
    data = load_plus_rows("humaneval+", regzipped, use_hub=False)
    assert (data.found_by, data.version, len(data.rows)) == ("given path", "v0.1.10", 164)


def test_dataset_hash_is_evalplus_md5_of_the_uncompressed_file(tmp_path: Path):
    plain = _uncompressed_copy(HE_FILE, tmp_path / "HumanEvalPlus-v0.1.10.jsonl")
    assert dataset_hash(HE_FILE) == dataset_hash(plain) == HE_MD5
    assert dataset_hash(MBPP_FILE) == MBPP_MD5
    assert {(v.name, v.version, v.md5) for v in KNOWN_VERSIONS} == {("humaneval+", "v0.1.10", HE_MD5), ("mbpp+", "v0.2.0", MBPP_MD5)}


def test_the_override_variables_name_an_uncompressed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    he = _uncompressed_copy(HE_FILE, tmp_path / "override" / "he.jsonl")
    mbpp = _uncompressed_copy(MBPP_FILE, tmp_path / "override" / "mbpp.jsonl")
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(he))
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(mbpp))
    data = load_plus_rows("humaneval+", use_hub=False)
    assert (data.origin, data.found_by, data.version, len(data.rows)) == (f"file:{he}", "HUMANEVAL_OVERRIDE_PATH", "v0.1.10", 164)
    rows, origin = load_source("mbpp+", SourceConfig(use_hub=False))
    assert len(rows) == 378 and origin.startswith(f"file:{mbpp} (MBPP+ v0.2.0, md5 {MBPP_MD5}")
    # An explicit path comes before the variable; a variable naming no file is an error (not the packaged copy).
    given = tmp_path / "given" / "HumanEvalPlus.jsonl.gz"
    given.parent.mkdir()
    given.write_bytes(HE_FILE.read_bytes())
    assert (load_plus_rows("humaneval+", given, use_hub=False).origin, load_plus_rows("humaneval+", given).found_by) == (
        f"file:{given}", "given path")
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(tmp_path / "missing.jsonl"))
    with pytest.raises(DatasetFormatError, match="missing.jsonl: no such file"):
        load_plus_rows("humaneval+", use_hub=False)


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="appdirs uses XDG_CACHE_HOME on Linux only")
def test_the_evalplus_cache_folder_is_found_like_appdirs_does(tmp_path: Path):
    cache = tmp_path / "xdg-cache" / "evalplus"  # XDG_CACHE_HOME is set by the autouse fixture
    assert evalplus_cache_dir() == cache
    _uncompressed_copy(HE_FILE, cache / "HumanEvalPlus-v0.1.10.jsonl")
    _uncompressed_copy(MBPP_FILE, cache / "MbppPlus-v0.2.0.jsonl")
    he = load_plus_rows("humaneval+", use_hub=False)
    assert (he.found_by, he.origin) == ("evalplus cache", f"file:{cache / 'HumanEvalPlus-v0.1.10.jsonl'}")
    assert len(load_problems("mbpp+", config=SourceConfig(use_hub=False))) == 378


def _without_packaged_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install that lost its data files (a wheel built without package data)."""
    monkeypatch.setattr(evalplus_release, "packaged_file", lambda name: tmp_path / "not-installed" / f"{name}.jsonl.gz")


def test_without_any_file_the_error_names_every_way_to_give_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _without_packaged_copies(tmp_path, monkeypatch)
    with pytest.raises(DatasetFormatError) as excinfo:
        load_plus_rows("mbpp+", use_hub=True)  # HF_HUB_OFFLINE=1: the Hub is not reachable
    message = str(excinfo.value)
    assert "\n" not in message and "no packaged copy, and the Hub (evalplus/mbppplus) was not reachable" in message
    for part in ("SourceConfig.mbppplus_file", "--mbppplus-file", "MBPP_OVERRIDE_PATH", "MbppPlus-v0.2.0.jsonl",
                 "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
                 f"{tmp_path / 'not-installed' / 'mbpp+.jsonl.gz'}: reinstall the package"):
        assert part in message
    with pytest.raises(DatasetFormatError, match="HUMANEVAL_OVERRIDE_PATH unset.*the Hub was not tried"):
        load_source("humaneval+", SourceConfig(use_hub=False))


def test_the_hub_copy_holds_tests_as_code_and_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, he_records: list[dict]):
    """The Hub path, reached by an install without its data files, on a local folder shaped like the Hub dataset."""
    _without_packaged_copies(tmp_path, monkeypatch)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    repo = tmp_path / "humanevalplus"  # shaped like evalplus/humanevalplus: tests as code, no inputs
    repo.mkdir()
    columns = ("task_id", "prompt", "canonical_solution", "entry_point", "test")
    (repo / "test.jsonl").write_text("".join(json.dumps({c: r[c] for c in columns}) + "\n" for r in he_records[:3]))
    with pytest.raises(DatasetFormatError, match="holds the tests as code .*HumanEvalPlus-v0.1.10.jsonl"):
        load_source("humaneval+", SourceConfig(humanevalplus_repo=str(repo)))


def test_a_changed_byte_or_the_other_dataset_is_refused_naming_the_expected_version(tmp_path: Path):
    data = gzip.decompress(HE_FILE.read_bytes())
    changed = data.replace(b'"HumanEval/0"', b'"HumanEval/9"', 1)
    assert len(changed) == len(data) and changed != data
    bad = tmp_path / "HumanEvalPlus-v0.1.10.jsonl"
    bad.write_bytes(changed)
    with pytest.raises(DatasetFormatError) as excinfo:
        load_plus_rows("humaneval+", bad, use_hub=False)
    message = str(excinfo.value)
    assert message.startswith(f"{bad}: unknown HumanEval+ version") and f"expected HumanEval+ v0.1.10 (md5 {HE_MD5})" in message
    assert "\n" not in message and "humanevalplus_release" in message
    gz = tmp_path / "changed.jsonl.gz"
    gz.write_bytes(gzip.compress(changed))
    with pytest.raises(DatasetFormatError, match="unknown HumanEval\\+ version"):
        load_problems(gz)  # also when the file is given as a source path

    with pytest.raises(DatasetFormatError, match=f"is MBPP\\+ v0.2.0 \\(md5 {MBPP_MD5}\\), not HumanEval\\+: expected HumanEval\\+ v0.1.10"):
        load_plus_rows("humaneval+", MBPP_FILE, use_hub=False)
    with pytest.raises(DatasetFormatError, match="is HumanEval\\+ v0.1.10 .*not MBPP\\+"):
        load_source("mbpp+", SourceConfig(use_hub=False, mbppplus_file=str(HE_FILE)))


def test_records_missing_fields_say_what_was_expected(he_records: list[dict], mbpp_records: list[dict]):
    record = {k: v for k, v in he_records[0].items() if k != "plus_input"}
    with pytest.raises(DatasetFormatError, match=r"x:1: field 'plus_input': missing: expected the HumanEval\+ release fields \["):
        plus_rows([("x:1", record)], "humaneval+")
    with pytest.raises(DatasetFormatError, match=r"field 'test': missing: .*\(it has MBPP\+'s fields: wrong file\?\)"):
        plus_rows([("x:1", mbpp_records[0])], "humaneval+")
    with pytest.raises(DatasetFormatError, match="field 'atol': must be a finite non-negative number"):
        plus_rows([("x:1", {**mbpp_records[0], "atol": -1})], "mbpp+")
    with pytest.raises(DatasetFormatError, match="field 'base_input': must be a list of argument lists"):
        plus_rows([("x:1", {**mbpp_records[0], "base_input": [1, 2]})], "mbpp+")


def test_a_release_file_given_as_a_path_is_read_as_evalplus():
    dataset = load_problems(MBPP_FILE)
    assert dataset.num_rows == 378 and set(dataset["source"]) == {"mbpp+"}
    assert dataset.features == FEATURES and json.loads(dataset[0]["base_inputs"])[0] == [[3, 4, 5, 6], [5, 7, 4, 10]]


def test_other_sources_get_empty_evalplus_columns_and_make_row_checks_their_types():
    row = load_problems("humaneval-mini")[0]
    assert (row["base_inputs"], row["plus_inputs"], row["atol"], row["contract"]) == ("", "", 0.0, "")
    plain_columns = [c for c in COLUMNS if c not in ("base_inputs", "plus_inputs", "atol", "contract")]
    good = {c: "x" for c in plain_columns} | {"tests": ["assert True\n"], "challenge_tests": [], "difficulty": "easy", "reference_lines": 1, "split": "test"}
    assert make_row("w", **good)["atol"] == 0.0
    with pytest.raises(DatasetFormatError, match="field 'atol': must be a finite non-negative float"):
        make_row("w", **good, atol=1)
    with pytest.raises(DatasetFormatError, match="field 'base_inputs': must be empty or the JSON text of a list"):
        make_row("w", **good, base_inputs="{}")
    with pytest.raises(DatasetFormatError, match="field 'contract': must be a string"):
        make_row("w", **good, contract=None)


def test_build_verifies_every_reference_and_saves_the_evalplus_columns(tmp_path: Path):
    # Verifying all 542 references took ~2 s on the 2-core machine, so the whole build runs here.
    out = tmp_path / "built"
    config = BuildConfig(
        sources=("humaneval+", "mbpp+"),
        out=str(out),
        source=SourceConfig(use_hub=False, humanevalplus_file=str(HE_FILE), mbppplus_file=str(MBPP_FILE)),
        sandbox=SANDBOX,
        progress=False,
    )
    built, report = build_with_report(config)
    assert sorted(built) == ["humanevalplus_test", "mbppplus_test"]
    assert built["humanevalplus_test"].num_rows == 164
    # The sandbox will not hand a test the re.Match objects three MBPP+ references return
    # (EvalPlus checks those tasks' outputs only for None); any other failure is a regression.
    failed = {d.task_id for d in report.removed["failed"]}
    assert failed <= {"Mbpp/737", "Mbpp/787", "Mbpp/794"}
    assert built["mbppplus_test"].num_rows + len(failed) == 378
    assert "HumanEval+ v0.1.10, md5 " + HE_MD5 in report.table()
    reloaded = load_problems(out, split="humanevalplus_test")
    assert reloaded.features == FEATURES
    by_id = {r["task_id"]: r for r in reloaded}
    assert by_id["HumanEval/32"]["atol"] == 0.0001 and len(json.loads(by_id["HumanEval/0"]["plus_inputs"])) > 0


def test_cli_takes_the_evalplus_files(tmp_path: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "cli"
    code = main(["--sources", "humaneval+", "--humanevalplus-file", str(HE_FILE), "--offline", "--no-verify", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert load_problems(out, split="humanevalplus_test").num_rows == 164


def _row(source: str, task_id: str, problem: str, solution: str) -> dict:
    return {"source": source, "task_id": task_id, "problem": problem, "reference_solution": solution, "entry_point": "f"}


def test_the_same_task_across_benchmark_variants_overlaps():
    evaluation = [_row("mbpp+", "Mbpp/610", "Reworded statement.", "def f(x):\n    return x\n"),
                  _row("humaneval+", "HumanEval/3", "Other words.", "def g():\n    return 3\n")]
    train = [
        _row("mbpp", "MBPP/610", "Original statement.", "def f(y):\n    return y\n"),
        _row("mbpp-sanitized", "MBPP/610", "Sanitized statement.", "def f(z):\n    return z\n"),
        _row("humaneval", "HumanEval/3", "Yet other words.", "def g():\n    return 4\n"),
        _row("mbpp", "MBPP/611", "Another task.", "def f(x):\n    return -x\n"),
        _row("custom", "MBPP/610", "Not MBPP at all.", "def h():\n    pass\n"),  # another source's ids mean nothing
    ]
    found = {(o.train_task, o.eval_task): o.reasons for o in find_overlaps(train, evaluation)}
    assert found == {
        ("mbpp:MBPP/610", "mbpp+:Mbpp/610"): ("same task",),
        ("mbpp-sanitized:MBPP/610", "mbpp+:Mbpp/610"): ("same task",),
        ("humaneval:HumanEval/3", "humaneval+:HumanEval/3"): ("same task",),
    }


def test_building_with_mbppplus_removes_the_mbpp_training_tasks_it_evaluates_on(mbpp_file: Path, mbpp_records: list[dict]):
    config = BuildConfig(sources=("mbpp", "mbpp+"), verify=False,
                         source=SourceConfig(use_hub=False, mbpp_file=str(mbpp_file), mbppplus_file=str(MBPP_FILE)))
    built, report = build_with_report(config)
    plus_ids = {int(r["task_id"].split("/")[1]) for r in mbpp_records}
    in_plus = {n for n in plus_ids if n > 510}  # MBPP+ takes validation (511-600) and train (601-974) tasks too
    assert len(in_plus) == 147
    removed = {d.task_id: d.reason for d in report.removed["overlap"]}
    assert {f"MBPP/{n}" for n in in_plus} <= set(removed)
    assert "overlaps mbpp+:Mbpp/602 (same task" in removed["MBPP/602"]
    # MBPP's own three train/test duplicates are still removed; so is train task 928, the same
    # program as test task 427, whose statement MBPP+ shortened to 928's (MBPP's adds "by using regex").
    assert "overlaps mbpp+:Mbpp/427 (same problem text)" in removed["MBPP/928"]
    assert set(removed) == {f"MBPP/{n}" for n in in_plus} | {"MBPP/602", "MBPP/704", "MBPP/872", "MBPP/928"}
    kept = {int(t.split("/")[1]) for key in ("mbpp_train", "mbpp_validation") for t in built[key]["task_id"]}
    assert not kept & plus_ids
    assert built["mbppplus_test"].num_rows == 378
