"""A 50,000-word page summarized on the bundled model (SmolLM2-135M, n_ctx 4096), served on 127.0.0.1 (slow).

The page is far beyond the context, so it is read in parts (map) whose notes are then summarized (reduce).
Every prompt must fit: the meter's count of each prompt equals the backend's own count of the tokens it
evaluated, and each stays within n_ctx minus the answer's tokens. The answer cites the URL and the title.
Map notes are kept short (16 tokens) to bound the time.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import ModelSettings, Settings
from assistant.core.clock import SystemClock
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, Delta, GenerationParams
from assistant.llm.worker import GenerationWorker
from assistant.pages.budget import meter_for
from assistant.pages.service import PageService
from assistant.pages.summarize import Lengths
from assistant.skillkit.api import SkillContext
from skills.summarize_page import summarize
from tests.feeds_server import Reply, serve
from tests.pages.test_pages import HTML, article, reader

pytestmark = pytest.mark.slow

N_CTX = 4096
TOPICS = [
    ("the river", "flooded", "the old mill", "in spring"),
    ("the council", "approved", "a new footbridge", "after a long debate"),
    ("the engineers", "tested", "the steel cables", "for three weeks"),
    ("the school", "planted", "two hundred trees", "along the bank"),
    ("the bakery", "sold", "bread and cakes", "to the builders"),
    ("the museum", "opened", "an exhibition about boats", "on Saturday"),
]


OPENINGS = ["Then", "Later", "Meanwhile,", "That year", "Soon", "Again", "Once more", "After that"]


def fifty_thousand_words(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    paragraphs: list[str] = []
    words = 0
    while words < 50_000:
        sentences = []
        for _ in range(6):
            who, did, what, when = rng.choice(TOPICS)
            sentences.append(f"{rng.choice(OPENINGS)} {who} {did} {what} {when}.")
        paragraphs.append(" ".join(sentences))
        words += sum(len(s.split()) for s in sentences)
    return paragraphs


class CountingBackend:
    """The real backend, recording the prompt tokens it reports for each call."""

    def __init__(self, backend) -> None:  # type: ignore[no-untyped-def]
        self.backend = backend
        self.name = backend.name
        self.prompt_tokens: list[int] = []

    def stream_chat(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Delta]:
        for delta in self.backend.stream_chat(messages, params, cancel):
            if delta.usage is not None:
                self.prompt_tokens.append(delta.usage.prompt_tokens)
            yield delta

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from assistant.llm.llama import LlamaBackend

    b = LlamaBackend.load(
        bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2"), ModelSettings(n_ctx=N_CTX)
    )
    yield b
    b.close()


@pytest.mark.timeout(3600)  # about 65,000 prompt tokens evaluated: minutes, and more on a busy machine
def test_a_50000_word_page_is_summarized_within_the_context(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    counting = CountingBackend(backend)
    worker = GenerationWorker(counting)
    map_tokens, summary_tokens = 16, 96
    service = PageService(
        reader(max_bytes=5_000_000), worker.generate_text, lambda: meter_for(backend, N_CTX),
        Lengths(map_tokens, summary_tokens),
    )  # fmt: skip
    ctx = SkillContext(clock=SystemClock(), settings=Settings(data_dir=tmp_path), pages=service)
    with serve() as server:
        url = server.route(
            "/book", Reply(200, article("The Footbridge Chronicle", fifty_thousand_words()), HTML)
        )
        try:
            result = summarize(ctx, url=url)
        finally:
            worker.close()
    data = result.data
    assert data["words"] >= 50_000 and data["parts"] >= 10 and data["levels"] >= 2
    # The meter counted exactly the tokens the backend evaluated, and every prompt left room for its answer.
    assert counting.prompt_tokens == data["prompt_tokens"]
    assert all(t <= N_CTX - map_tokens for t in counting.prompt_tokens[:-1])
    assert counting.prompt_tokens[-1] <= N_CTX - summary_tokens
    lines = result.text.splitlines()
    assert lines[0] == f"Summary of “The Footbridge Chronicle” — {url}"
    assert lines[1] and "http" not in lines[1] and lines[-1].startswith(f"({data['words']:,} words, read in ")


def test_a_real_pages_summary_keeps_to_the_page(backend, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real news page of the extraction benchmark (../shared/data/pages), summarized on SmolLM2: whichever
    path the summary took (model, retry, extractive), every number, date and name in it is on the page."""
    import gzip

    from assistant.pages.grounding import check_summary
    from tests.conftest import shared_data

    html = shared_data("pages", "html")
    files = sorted(html.glob("35b158918c*.html.gz"))  # a 159-word news item on a band's reunion tour
    if not files:
        pytest.skip(f"the page 35b158918c... is not in {html}")
    worker = GenerationWorker(backend)
    service = PageService(
        reader(), worker.generate_text, lambda: meter_for(backend, N_CTX), Lengths(96, 160)
    )  # fmt: skip
    with serve() as server:
        url = server.route("/p", Reply(200, gzip.decompress(files[0].read_bytes()), HTML))
        try:
            page = service.read(url)
            found = service.summarize(url)
        finally:
            worker.close()
    assert found.text and found.path in ("model", "retry", "extractive")
    assert check_summary(found.text, [page.title, *page.paragraphs]).ok, found.text
