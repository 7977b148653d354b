"""The Hub code paths, without the network: a local folder shaped like the Hub repo goes through
the same ``load_dataset`` call as the real repo id, and huggingface_hub's HTTP client is replaced
by an in-process transport to observe (and refuse) requests and to receive a push."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import datasets
import httpx2
import huggingface_hub.constants
import pyarrow.parquet as pq
import pytest
from datasets import Features, Sequence, Value
from huggingface_hub.utils import _http

from datasets_build import BuildConfig, SourceConfig, build
from datasets_build.humaneval import packaged_humaneval_file
from datasets_build.jsonl import read_records
from datasets_build.mbpp import MBPP_SPLITS
from datasets_build.sources import load_source


# Column types of the Hub's parquet files.
MBPP_FULL = Features({
    "task_id": Value("int32"), "text": Value("string"), "code": Value("string"),
    "test_list": Sequence(Value("string")), "test_setup_code": Value("string"),
    "challenge_test_list": Sequence(Value("string")),
})
MBPP_SANITIZED = Features({
    "source_file": Value("string"), "task_id": Value("int32"), "prompt": Value("string"),
    "code": Value("string"), "test_imports": Sequence(Value("string")), "test_list": Sequence(Value("string")),
})


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture(scope="module")
def mbpp_records(mbpp_file: Path) -> list[dict]:
    return [record for _, record in read_records(mbpp_file)]


def _card(configs: dict[str, list[str]]) -> str:
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {name}/{split}-*" for split in splits]
    return "\n".join(lines + ["---", ""])


def _hub_folder(root: Path, configs: dict[str, dict[str, tuple[list[dict], Features]]]) -> Path:
    for name, splits in configs.items():
        (root / name).mkdir(parents=True)
        for split, (records, features) in splits.items():
            datasets.Dataset.from_list(records, features=features).to_parquet(str(root / name / f"{split}-00000-of-00001.parquet"))
    (root / "README.md").write_text(_card({name: list(splits) for name, splits in configs.items()}))
    return root


def _by_id(rows: list[dict]) -> dict[str, dict]:
    return {row["task_id"]: row for row in rows}


def test_mbpp_from_a_hub_shaped_folder_gives_the_same_rows_as_the_release_file(tmp_path: Path, mbpp_records: list[dict],
                                                                                mbpp_file: Path):
    splits = {split: ([r for r in mbpp_records if lo <= r["task_id"] <= hi], MBPP_FULL) for split, lo, hi in MBPP_SPLITS}
    sanitized = [
        {"source_file": "x", "task_id": r["task_id"], "prompt": r["text"], "code": r["code"], "test_imports": ["import math"], "test_list": r["test_list"]}
        for r in mbpp_records[600:605]
    ]
    repo = _hub_folder(tmp_path / "mbpp", {"full": splits, "sanitized": {"train": (sanitized, MBPP_SANITIZED)}})

    from_hub, origin = load_source("mbpp", SourceConfig(mbpp_repo=str(repo)))
    from_file, _ = load_source("mbpp", SourceConfig(use_hub=False, mbpp_file=str(mbpp_file)))
    assert origin == f"hub:{repo}"
    assert len(from_hub) == 974 and _by_id(from_hub) == _by_id(from_file)

    rows, _ = load_source("mbpp-sanitized", SourceConfig(mbpp_repo=str(repo)))
    assert [r["source"] for r in rows] == ["mbpp-sanitized"] * 5
    assert rows[0]["task_id"] == "MBPP/601" and rows[0]["split"] == "train"
    assert all(t.startswith("import math\nassert ") for r in rows for t in r["tests"])


def test_humaneval_from_a_hub_shaped_folder_gives_the_same_rows_as_the_package_file(tmp_path: Path):
    records = [record for _, record in read_records(packaged_humaneval_file())]
    features = Features({name: Value("string") for name in ("task_id", "prompt", "canonical_solution", "test", "entry_point")})
    repo = _hub_folder(tmp_path / "openai_humaneval", {"openai_humaneval": {"test": (records, features)}})
    from_hub, origin = load_source("humaneval", SourceConfig(humaneval_repo=str(repo)))
    from_file, _ = load_source("humaneval", SourceConfig(use_hub=False))
    assert origin == f"hub:{repo}"
    assert len(from_hub) == 164 and from_hub == from_file


class _Transport:
    """Stands in for the network: records every request huggingface_hub makes."""

    def __init__(self, respond) -> None:
        self.requests: list[httpx2.Request] = []
        self.respond = respond

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self.respond(request)


@pytest.fixture
def transport(monkeypatch: pytest.MonkeyPatch):
    def install(respond) -> _Transport:
        handler = _Transport(respond)
        monkeypatch.setattr(_http, "_GLOBAL_CLIENT_FACTORY", lambda: httpx2.Client(transport=httpx2.MockTransport(handler)))
        monkeypatch.setattr(_http, "_GLOBAL_CLIENT", None)
        return handler

    return install


def _refuse(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("no network in tests", request=request)


def test_offline_mode_never_contacts_the_hub(transport, caplog: pytest.LogCaptureFixture):
    handler = transport(_refuse)
    with caplog.at_level(logging.INFO, logger="datasets_build"):
        rows, origin = load_source("humaneval", SourceConfig())
    assert handler.requests == [] and origin.startswith("file:") and len(rows) == 164
    assert "HF_HUB_OFFLINE is set" in caplog.text


def test_a_failed_connection_falls_back_to_the_local_file(monkeypatch: pytest.MonkeyPatch, transport, caplog: pytest.LogCaptureFixture):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    handler = transport(_refuse)
    with caplog.at_level(logging.WARNING, logger="datasets_build"):
        rows, origin = load_source("humaneval", SourceConfig(hub_timeout_s=1.0))
    assert "/api/datasets/openai/openai_humaneval" in [r.url.path for r in handler.requests]
    assert origin.startswith("file:") and len(rows) == 164
    assert "Hub unreachable for openai/openai_humaneval (ConnectError" in caplog.text


class _FakeHub:
    """The few Hub endpoints ``DatasetDict.push_to_hub`` uses, answering as the Hub does for a
    new, empty repo, and keeping every uploaded file by content hash."""

    SHA = "0" * 40

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.blobs: dict[str, bytes] = {}
        self.commits: list[list[dict]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if request.url.host == "upload.test":
            self.blobs[path.lstrip("/")] = request.content
            return httpx2.Response(200)
        if request.method == "GET" and (path == f"/api/datasets/{self.repo}" or path.startswith(f"/api/datasets/{self.repo}/revision/")):
            return httpx2.Response(200, json={"id": self.repo, "sha": self.SHA, "siblings": [], "private": False})
        if request.method == "GET" and "/tree/" in path:
            if path.endswith(self.SHA):
                return httpx2.Response(200, json=[])
            return httpx2.Response(404, headers={"X-Error-Code": "EntryNotFound"}, json={"error": "Entry not found"})
        if path.endswith("/preupload/main"):
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "lfs", "shouldIgnore": False} for f in files]})
        if path.endswith("/info/lfs/objects/batch"):
            objects = json.loads(request.content)["objects"]
            return httpx2.Response(200, json={"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"], "actions": {"upload": {"href": f"https://upload.test/{o['oid']}"}}} for o in objects
            ]})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if path.endswith("/commit/main"):
            self.commits.append([json.loads(line) for line in request.content.decode().splitlines()])
            return httpx2.Response(200, json={"commitUrl": f"https://huggingface.co/datasets/{self.repo}/commit/{self.SHA}", "commitOid": self.SHA})
        raise AssertionError(f"unexpected Hub request {request.method} {request.url}")

    def committed_file(self, name: str) -> bytes:
        (entry,) = [e["value"] for e in self.commits[-1] if e["key"] == "lfsFile" and e["value"]["path"] == name]
        return self.blobs[entry["oid"]]


@pytest.mark.filterwarnings("ignore:Use .content=<...>. to upload raw bytes:DeprecationWarning")  # inside huggingface_hub
def test_push_to_hub_uploads_the_built_splits(monkeypatch: pytest.MonkeyPatch, transport):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # plain HTTP uploads only
    monkeypatch.setenv("HF_TOKEN", "hf_test_not_a_real_token")
    hub = _FakeHub("someone/duelcoder-problems")
    transport(hub)
    built = build(BuildConfig(sources=("humaneval-mini",), push_to_hub=hub.repo, verify=False, progress=False))

    assert len(hub.commits) == 1
    pushed = pq.read_table(io.BytesIO(hub.committed_file("data/humaneval_mini_test-00000-of-00001.parquet"))).to_pylist()
    assert pushed == built["humaneval_mini_test"].to_list()
    card = hub.committed_file("README.md").decode()
    assert "split: humaneval_mini_test" in card and "name: reference_lines" in card
