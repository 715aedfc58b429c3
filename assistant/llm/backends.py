"""Which model backend runs: ``model.backend`` names an ``assistant.backends`` plugin.

The built-ins are registered in this distribution's pyproject.toml like any plugin's: ``llama`` (the
embedded llama.cpp model, assistant.llm.llama) and ``openai`` (an OpenAI-compatible server,
assistant.llm.remote). A backend module is imported only when it is chosen, so the remote backend never
imports llama_cpp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from assistant.core import plugins

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.llm.types import LLMBackend


class BackendFactory(Protocol):
    """What an ``assistant.backends`` entry point names: called once when the daemon starts, with the whole
    settings (``settings.model`` holds the model's options), returning a ready backend. A backend that
    cannot be set up raises ConfigError (a setting to fix) or ModelFileError (a model file to fix)."""

    def __call__(self, settings: Settings, /) -> LLMBackend: ...


def build_llm(settings: Settings) -> LLMBackend:
    """The backend ``model.backend`` names (PluginError naming the installed ones when there is none)."""
    name = settings.model.backend
    factory = cast(BackendFactory, plugins.load_factory(plugins.BACKENDS, name, setting="model.backend"))
    return factory(settings)


def llama_backend(settings: Settings) -> LLMBackend:
    """The ``llama`` backend plugin: the GGUF file of ``model.path`` (or the bundled model) in llama.cpp."""
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.model_file import resolve_model_path

    return LlamaBackend.load(
        resolve_model_path(settings),
        settings.model,
        data_dir=settings.data_dir,
        state_dir=settings.data_dir / "prompt-states",
    )


def openai_backend(settings: Settings) -> LLMBackend:
    """The ``openai`` backend plugin: an OpenAI-compatible server at ``model.base_url``."""
    from assistant.llm.remote import RemoteBackend

    return RemoteBackend.from_settings(settings.model)
