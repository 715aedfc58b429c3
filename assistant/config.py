"""Settings: a TOML file plus ASSISTANT_* environment variables (pydantic-settings).

Precedence, highest first: environment (``ASSISTANT_MODEL__PATH=...``), the TOML file, defaults.
The TOML file is ``--config``, else ``$ASSISTANT_CONFIG``, else ``~/.config/assistant/config.toml``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from assistant.core import plugins
from assistant.core.errors import ConfigError
from assistant.core.localtime import check_zone_name, parse_quiet_hours


def default_threads() -> int:
    """The threads llama.cpp gets when model.n_threads is not set: the cores this process may run on, less
    the small ones of a big.LITTLE CPU and the second thread of an SMT core (assistant.core.threads)."""
    from assistant.core.threads import choose_threads

    return choose_threads().value


def default_batch(n_threads: int) -> int:
    """The prompt batch when model.n_batch is not set: 512, or 256 with one thread (assistant.core.threads)."""
    from assistant.core.threads import choose_batch

    return choose_batch(n_threads).value


def installed_plugin(group: str, name: str, what: str) -> str:
    """``name`` when a plugin of that name is installed in ``group`` (metadata only, nothing imported), else
    ValueError naming the installed ones."""
    known = plugins.names(group)
    if name not in known:
        raise ValueError(f"no {what} plugin named {name!r} is installed (installed: {', '.join(known) or 'none'})")
    return name


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "assistant"


def default_config_path() -> Path:
    return Path.home() / ".config" / "assistant" / "config.toml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    api_token: str | None = Field(None, description="Bearer token; required to listen beyond loopback")
    queue_size: int = Field(8, ge=1, description="generation requests waiting for the model before 429")
    retry_after: int = Field(2, ge=1, description="seconds suggested in Retry-After when the queue is full")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description='Host names the daemon answers to besides loopback and the bind address ("*" = any)',
    )
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="largest request body; larger ones get 413 before they are read"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="daemon log level")
    log_format: Literal["json", "text"] = Field(
        "text", description='"json": one JSON object per line; "text": plain lines (both carry request/run ids)'
    )
    metrics: bool = Field(True, description="GET /metrics in Prometheus text format (behind api_token when set)")
    stop_timeout: float = Field(
        5.0, gt=0, le=120, description="seconds a stop (SIGTERM) waits for open responses and running scheduled jobs"
    )
    stream_interval_ms: int = Field(
        25, ge=0, le=1000,
        description="with the embedded model, tokens that come faster than this go to a streaming client in one "
        "chunk (fewer wake-ups of the event loop, which shares the cores with the model); 0 sends every token on "
        "its own (a remote model always does)",
    )  # fmt: skip

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)


class ModelSettings(Section):
    backend: str = Field(
        "llama", description='a model backend plugin: "llama" (embedded llama.cpp) or "openai" (a remote server)'
    )
    path: Path | None = Field(None, description="a GGUF file; None means the bundled model named by model.bundled")
    bundled: Literal["auto", "qwen1.5b", "qwen0.5b", "smollm2", "gemma3"] = Field(
        "auto",
        description='which bundled model runs when model.path is not set; "auto": the largest installed chat '
        "model the machine's RAM fits (SmolLM2 under 1.5 GiB, Qwen 0.5B from 1.5 GiB, Qwen 1.5B from 3.25 GiB "
        "when installed; `assistant models` shows the choice and why)",
    )
    n_ctx: int = Field(4096, ge=256)
    n_threads: int = Field(default_factory=default_threads, ge=1)
    n_batch: int = Field(default_factory=lambda data: default_batch(data.get("n_threads", 2)), ge=1)
    use_mmap: bool = True
    flash_attn: bool = Field(False, description="llama.cpp flash attention (chosen by measurement: see README)")
    chat_format: str | None = Field(None, description="override the chat template (llama.cpp format name)")
    max_tokens: int = Field(512, ge=1, description="default completion length when a request names none")
    prompt_cache_mb: int = Field(256, ge=0, description="RAM for saved conversation prompt states; 0 = off")
    prompt_cache_idle_s: float = Field(
        600, ge=0,
        description="saved prompt states no request used for this long are dropped and their memory given back "
        "to the system; 0 keeps them until prompt_cache_mb is full",
    )  # fmt: skip
    prompt_disk_mb: int = Field(
        64, ge=0,
        description="disk (under the data dir, prompt-states/) for the system prompt's evaluated state, kept across "
        "restarts so the first chat after a boot evaluates only what follows it; 0 = off",
    )  # fmt: skip
    seed: int = -1
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)
    generation_loop: Literal["native", "python"] = Field(
        "native",
        description='"native": the token loop on llama.cpp\'s C API; "python": llama-cpp-python\'s Llama.generate',
    )
    draft: str = Field(
        "none", min_length=1,
        description='speculative decoding of greedy requests (native loop): "none"; "lookup" (drafts copied from '
        'the prompt and the output so far); or a bundled model name or a GGUF path of the same vocabulary as the '
        'model (qwen0.5b for qwen1.5b); chosen by measurement (docs/benchmarks.md, "Drafting")',
    )  # fmt: skip
    draft_tokens: int = Field(8, ge=1, le=64, description="most draft tokens verified in one batch")
    # remote backend (model.backend = "openai")
    base_url: str | None = None
    api_key: str | None = None
    remote_model: str | None = Field(None, description="model name sent to the remote server")
    timeout: float = Field(120.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else v

    @field_validator("backend")
    @classmethod
    def _installed_backend(cls, v: str) -> str:
        return installed_plugin(plugins.BACKENDS, v, "model backend")


class MemorySettings(Section):
    enabled: bool = True
    chroma_url: str | None = Field(None, description="use a Chroma server instead of the embedded store")
    collection: str = "memories"
    recall_k: int = Field(5, ge=0)
    remember_api_chats: bool = Field(
        False,
        description="store chats from clients that do not say (a plain OpenAI client) in memory; the daemon's"
        " own clients say with \"memory\": true, any client can with \"memory\": true or false",
    )
    recall_token_budget: int = Field(512, ge=0)
    recall_seconds: float = Field(
        2.0, ge=0, description="keep recalled memories to what the model reads in this many seconds before its"
        " first token (its prompt speed is measured as it runs; at least 96 tokens; 0: recall_token_budget alone)",
    )
    recall_min_similarity: float = Field(
        0.35, ge=-1, le=1, description="the cosine a memory sharing no content word with the message needs to be"
        " recalled (one shared word: 0.1 less; docs/memory.md, the recall-to-answer loop)"
    )
    recency: bool = True
    recency_weight: float = Field(0.1, ge=0, description="share of the fused-score spread given to recency")
    recency_half_life_days: float = Field(30.0, gt=0)
    fusion: Literal["rrf", "minmax", "zscore"] = "zscore"
    dense_weight: float = Field(1.0, ge=0)
    keyword_weight: float = Field(1.0, ge=0)
    rrf_k: float = Field(60.0, gt=0)
    candidates: int = Field(100, ge=1, le=1000, description="results taken from each retriever before fusion")
    duplicate_threshold: float = Field(0.85, gt=0, le=1, description="word-set Jaccard that hides a near-copy")
    context_turns: int = Field(2, ge=0, le=10, description="turns before a conversation turn indexed with it (BM25)")
    context_dates: bool = Field(True, description="index a turn with its day and its relative dates resolved")
    context_weight: float = Field(0.5, ge=0, description="BM25 weight of that context against 1 for the turn")
    turn_dense_weight: float = Field(0.35, ge=0, description="dense weight in fusion for conversation turns")
    keyword_max_df: float = Field(
        0.1, gt=0, le=1, description="keyword search leaves out a query term held by more than this share of the "
        "memories and by more than keyword_min_df_rows of them (the rarest term is always kept); 1 keeps every term"
    )
    keyword_min_df_rows: int = Field(5000, ge=0, description="a term held by at most this many memories is kept")
    max_chars: int = Field(20_000, ge=100, description="longest memory text accepted (413 above)")
    embed_threads: int = Field(1, ge=1, description="torch threads for the embedder (1 is fastest on a busy CPU)")
    embedder: str = Field(
        "onnx", description="an embedder plugin: onnx (ONNX Runtime, no PyTorch in the daemon; exported once) or "
        "sentence-transformers",
    )  # fmt: skip

    @field_validator("embedder")
    @classmethod
    def _installed_embedder(cls, v: str) -> str:
        return installed_plugin(plugins.EMBEDDERS, v, "embedder")


class FeedSettings(Section):
    enabled: bool = Field(True, description="feed subscriptions and /api/feeds; off also hides feeds from skills")
    timeout: float = Field(10.0, gt=0, description="seconds for one whole fetch (connect, headers and body)")
    max_bytes: int = Field(5_000_000, ge=1024, description="a body larger than this is cut off and recorded")
    max_redirects: int = Field(5, ge=0, le=20)
    max_entries_per_feed: int = Field(500, ge=1, description="entries kept per feed, newest first")
    refresh_workers: int = Field(4, ge=1, le=32, description="feeds fetched at once by refresh_all")
    user_agent: str = "assistant-feeds/0.1"
    allowed_networks: list[str] = Field(
        default_factory=list,
        description='non-public networks feeds may be fetched from, as CIDR ("192.168.1.0/24" for a NAS)',
    )

    @field_validator("allowed_networks")
    @classmethod
    def _cidr(cls, v: list[str]) -> list[str]:
        networks = []
        for text in v:
            try:
                networks.append(str(ipaddress.ip_network(text.strip(), strict=False)))
            except ValueError:
                raise ValueError(f'{text!r} is not a network in CIDR form such as "192.168.1.0/24"') from None
        return networks


class PageSettings(Section):
    enabled: bool = Field(True, description="/summarize and /eli5 of web pages; fetched as feeds are")
    timeout: float = Field(15.0, gt=0, description="seconds for one whole page fetch (connect, headers and body)")
    max_bytes: int = Field(5_000_000, ge=1024, description="a larger page is not summarized (it says so)")
    max_redirects: int = Field(5, ge=0, le=20)
    max_words: int = Field(100_000, ge=100, description="a page with more words of text is not summarized")
    map_tokens: int = Field(96, ge=8, le=1024, description="tokens of the note on each part of a long page")
    summary_tokens: int = Field(256, ge=16, description="tokens of the summary itself")
    user_agent: str = "assistant-pages/0.1"


class SkillSettings(Section):
    enabled: bool = Field(True, description="skills (/api/skills, chat shortcuts); the scheduler needs them")
    choice: bool | Literal["auto"] = Field(
        "auto",
        description="when no rule or shortcut matches, the model may choose a skill (a short extra model call); "
        "auto: on unless the model routes worse than the rules alone (SmolLM2, the 0.5B; docs/skills.md)",
    )


class SchedulerSettings(Section):
    enabled: bool = True
    timezone: str | None = Field(None, description="default zone of new schedules; None = top-level timezone")
    misfire_grace_seconds: int = Field(
        43200, ge=1, description="a run missed (asleep, stopped) by less than this still runs, once"
    )
    max_workers: int = Field(2, ge=1, description="schedules that may run at the same time")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        return None if v is None else check_zone_name(v)


class ReminderSettings(Section):
    enabled: bool = Field(True, description="reminders, timers and alarms (/api/reminders, in chat); need [notify]")


class NotifySettings(Section):
    enabled: bool = True
    webhook_url: str | None = Field(None, description="POST each notification as JSON here")
    ntfy_url: str | None = Field(None, description="ntfy topic URL, e.g. https://ntfy.sh/my-topic")
    ntfy_token: str | None = Field(None, description="Bearer token for a protected ntfy topic")
    desktop: bool = Field(True, description="notify-send popups when notify-send is on PATH")
    quiet_hours: str | None = Field(None, description='"22:00-07:00" holds non-urgent notifications')
    timeout: float = Field(10.0, gt=0, description="seconds per webhook/ntfy/notify-send attempt")
    retry_base_seconds: float = Field(2.0, gt=0, description="first retry wait; doubles per failure")
    retry_max_seconds: float = Field(900.0, gt=0, description="longest wait between retries")
    max_attempts: int = Field(0, ge=0, description="webhook/ntfy attempts per notification; 0 = keep trying")
    poll_seconds: float = Field(1.0, gt=0, description="delivery thread wake-up interval")
    retention_days: int = Field(90, ge=0, description="days to keep delivered notifications; 0 = forever")
    channels: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="[notify.channels.NAME] tables: a channel plugin's own options (enabled = false turns it off)",
    )

    @field_validator("channels")
    @classmethod
    def _installed_channels(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in v:
            installed_plugin(plugins.CHANNELS, name, "notification channel")
        return v

    @field_validator("webhook_url", "ntfy_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, v: str | None) -> str | None:
        if v:
            parse_quiet_hours(v)
        return v or None


class VoiceSettings(Section):
    stt: str = Field(
        "hybrid", description='"hybrid", "pocketsphinx", "whisper", "command" or "package.module:Class"'
    )
    tts: str = Field("espeak-ng", description='"espeak-ng", "command" or "package.module:Class"')
    daemon_url: str | None = Field(None, description="the daemon to talk to; None means server.host:port")
    stt_command: str | None = Field(None, description="for stt = command: a program run on {wav}, printing text")
    tts_command: str | None = Field(None, description="for tts = command: reads text on stdin, writes {wav}")
    phrases: list[str] = Field(default_factory=list, description="extra command phrases for the grammar")
    dictation: bool = Field(True, description="fall back to the general language model off the grammar")
    wake_word: str | None = Field(None, description="hands-free mode: only utterances starting with it")
    espeak_voice: str = "en-us"
    espeak_speed: int = Field(160, ge=80, le=450, description="words per minute")
    input_device: str | None = None
    output_device: str | None = None
    hangover: float = Field(0.8, gt=0, le=5, description="seconds of silence that end an utterance")
    max_seconds: float = Field(15.0, gt=0, le=120, description="longest utterance recorded")
    answer_max_tokens: int = Field(200, ge=1, description="max_tokens asked of the daemon for a spoken answer")
    timeout: float = Field(180.0, gt=0, description="seconds to wait for an answer")
    mute: bool = Field(False, description="do not speak notifications")


class PersonaSettings(Section):
    """One ``[personas.NAME]`` table: a new persona, or changes to a built-in one (unset fields keep it)."""

    system_prompt: str | None = Field(None, min_length=1, max_length=4000)
    description: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ASSISTANT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    timezone: str = "UTC"
    server: ServerSettings = Field(default_factory=ServerSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    pages: PageSettings = Field(default_factory=PageSettings)
    skills: SkillSettings = Field(default_factory=SkillSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    personas: dict[str, PersonaSettings] = Field(
        default_factory=dict,
        description="[personas.NAME] tables: system_prompt, description, temperature, top_p, max_tokens",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment, then defaults. ``load_settings`` adds the file."""
        return (init_settings, env_settings)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        return check_zone_name(v)

    @field_validator("personas")
    @classmethod
    def _persona_names(cls, v: dict[str, PersonaSettings]) -> dict[str, PersonaSettings]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", name):
                raise ValueError(f"persona name {name!r}: use 1-32 letters, digits, '_' or '-'")
        return v

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return Path(v).expanduser()


class _TomlSource(PydanticBaseSettingsSource):
    """The TOML file's contents (read by load_settings()) as a pydantic-settings source."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def _settings_with_file(data: dict[str, Any]) -> type[Settings]:
    """A Settings subclass whose sources are keyword arguments, environment, then ``data``, then defaults.

    One class per load_settings() call, holding its own file contents: nothing is shared between
    calls, so loading settings in two threads at once cannot mix their files.
    """

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _TomlSource(settings_cls, data))

    return _FileSettings


def is_wildcard_host(host: str) -> bool:
    """True for a listen address meaning "every interface" ("0.0.0.0", "::", or empty)."""
    return host.strip() in ("", "0.0.0.0", "::", "[::]")


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_config_path(explicit: str | Path | None = None) -> Path | None:
    """The config file to read, or None when the default file does not exist."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("ASSISTANT_CONFIG")
    if env:
        return Path(env).expanduser()
    default = default_config_path()
    return default if default.exists() else None


def _format_validation_error(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown setting"
    value = first.get("input")
    shown = f" (got {value!r})" if first["type"] != "extra_forbidden" and not isinstance(value, dict) else ""
    more = len(err.errors()) - 1
    tail = f"; and {more} more problem(s)" if more else ""
    return f"{key}: {msg}{shown}{tail}"


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file and environment; raise ConfigError with one line naming the bad key."""
    path = resolve_config_path(config)
    data: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        loaded = _settings_with_file(data)(**overrides)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    # Hand back a plain Settings (pickles, compares equal to another load of the same values): the
    # fields were validated just now by the same definitions, so they are copied as they are.
    values = {name: getattr(loaded, name) for name in Settings.model_fields}
    return Settings.model_construct(_fields_set=set(loaded.model_fields_set), **values)
