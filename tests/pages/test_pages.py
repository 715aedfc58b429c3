"""Pages: fetched on 127.0.0.1 through the feeds' guarded fetcher, extracted, summarized in parts (map,
then reduce) by a fake model whose every prompt is recorded. The skills and chat shortcuts are tested in
tests/skills/test_summarize_page.py, hostile pages in tests/pages/test_hostile.py, the real model in
tests/pages/test_real.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.llm.types import ChatMessage, Completion, GenerationParams, Usage
from assistant.llm.worker import GenerationWorker
from assistant.pages.budget import PromptMeter, meter_for
from assistant.pages.models import PageError
from assistant.pages.read import PageReader, build_fetcher
from assistant.pages.service import PageService, build_pages
from assistant.pages.summarize import Lengths
from tests.fakes import FakeLLM
from tests.feeds_server import FeedServer, Reply, serve
from tests.settings_copy import changed

HTML = [("Content-Type", "text/html; charset=utf-8")]
SENTENCES = [
    "The river town of Elmsford opened a new footbridge on Saturday after two years of work.",
    "Engineers say the bridge can carry four thousand people at once and will last a century.",
    "Local shops expect more visitors from the villages on the far bank of the river.",
    "The mayor thanked the builders and the families who lent their boats during the floods.",
]


def article(title: str, paragraphs: list[str], extra: str = "") -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        f"<article><h1>{title}</h1>{body}{extra}</article>"
        f"<footer>Copyright Elmsford Gazette</footer></body></html>"
    ).encode()


def long_paragraphs(words: int) -> list[str]:
    out: list[str] = []
    n = 0
    while sum(len(p.split()) for p in out) < words:
        n += 1
        out.append(f"Section {n}. " + " ".join(SENTENCES[(n + i) % 4] for i in range(4)))
    return out


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve() as s:
        yield s


def reader(max_bytes: int = 2_000_000, timeout: float = 5.0, max_words: int = 100_000) -> PageReader:
    fetcher = build_fetcher(
        timeout=timeout,
        max_bytes=max_bytes,
        max_redirects=3,
        user_agent="t",
        allowed_networks=["127.0.0.0/8"],
    )
    return PageReader(fetcher, max_words=max_words)


def pages_with(
    llm: FakeLLM, n_ctx: int = 512, map_tokens: int = 24, summary_tokens: int = 48
) -> tuple[PageService, GenerationWorker]:
    worker = GenerationWorker(llm)
    service = PageService(
        reader(), worker.generate_text, lambda: meter_for(llm, n_ctx), Lengths(map_tokens, summary_tokens)
    )
    return service, worker


def test_a_page_is_read_as_its_article_text(server: FeedServer) -> None:
    url = server.route("/a", Reply(200, article("Footbridge opens", SENTENCES), HTML))
    page = reader().read(url)
    assert page.title == "Footbridge opens"
    assert page.paragraphs[-4:] == tuple(SENTENCES)
    assert "Copyright" not in page.text and "Home" not in page.text
    assert server.requests[0][1]["accept"].startswith("text/html")


@pytest.mark.parametrize(
    ("reply", "code", "words"),
    [
        (
            Reply(200, b"%PDF-1.7 ...", [("Content-Type", "application/pdf")]),
            "page_not_html",
            "not a web page",
        ),
        (
            Reply(200, b"<html><body><script>app()</script></body></html>", HTML),
            "page_empty",
            "no readable text",
        ),
        (Reply(402, b"pay", HTML), "page_paywalled", "paywalled"),
        (Reply(401, b"login", HTML), "page_paywalled", "login"),
        (Reply(404, b"gone", HTML), "page_fetch_failed", "HTTP 404"),
        (
            Reply(
                200,
                article(
                    "Teaser",
                    SENTENCES[:2],
                    '<script type="application/ld+json">{"isAccessibleForFree": "False"}</script>',
                ),
                HTML,
            ),  # fmt: skip
            "page_paywalled",
            "paywall",
        ),
    ],
)
def test_unusable_pages_get_a_clear_message(server: FeedServer, reply: Reply, code: str, words: str) -> None:
    url = server.route("/x", reply)
    with pytest.raises(PageError) as err:
        reader().read(url)
    assert err.value.code == code and words in err.value.message and url in err.value.message


def test_a_huge_page_is_refused_naming_the_setting(server: FeedServer) -> None:
    url = server.route("/big", Reply(200, article("Big", long_paragraphs(20_000)), HTML))
    with pytest.raises(PageError) as err:
        reader(max_bytes=50_000).read(url)
    assert err.value.code == "page_too_large" and "pages.max_bytes" in err.value.message


def test_a_page_with_too_many_words_is_refused(server: FeedServer) -> None:
    url = server.route("/long", Reply(200, article("Long", long_paragraphs(3000)), HTML))
    with pytest.raises(PageError) as err:
        reader(max_words=1000).read(url)
    assert err.value.code == "page_too_long" and "pages.max_words" in err.value.message


def test_a_slow_page_times_out_with_a_clear_message(server: FeedServer) -> None:
    hold = threading.Event()
    url = server.route("/slow", Reply(200, article("Slow", SENTENCES), HTML, hold=hold))
    try:
        with pytest.raises(PageError) as err:
            reader(timeout=0.3).read(url)
    finally:
        hold.set()
    assert err.value.code == "page_too_slow" and "pages.timeout" in err.value.message


def test_plain_text_pages_are_read_too(server: FeedServer) -> None:
    url = server.route("/t.txt", Reply(200, "\n".join(SENTENCES).encode(), [("Content-Type", "text/plain")]))
    page = reader().read(url)
    assert page.paragraphs == tuple(SENTENCES) and page.title == ""


def test_private_addresses_are_refused_as_for_feeds(server: FeedServer, settings: Settings) -> None:
    settings = changed(settings, feeds={"allowed_networks": []})  # pages share the feeds' allowed networks
    service = build_pages(settings, GenerationWorker(FakeLLM()).generate_text, FakeLLM())
    with pytest.raises(BadRequest) as err:
        service.summarize(server.url("/a"))
    assert err.value.code == "url_refused" and "feeds.allowed_networks" in err.value.message
    assert server.requests == []


def test_a_redirect_to_a_refused_address_is_not_followed(server: FeedServer) -> None:
    url = server.route("/r", Reply(302, b"", [("Location", "http://169.254.169.254/latest/meta-data/")]))
    with pytest.raises(PageError) as err:
        reader().read(url)
    assert err.value.code == "page_fetch_failed" and "refused" in err.value.message
    assert "link-local" in err.value.message


def test_a_short_page_is_summarized_in_one_call(server: FeedServer) -> None:
    llm = FakeLLM("A new footbridge opened in Elmsford.")
    service, worker = pages_with(llm, n_ctx=2048)
    try:
        found = service.summarize(
            server.route("/a", Reply(200, article("Footbridge opens", SENTENCES), HTML))
        )
    finally:
        worker.close()
    assert (found.text, found.parts, found.levels, found.fallback) == (
        "A new footbridge opened in Elmsford.", 1, 1, False,
    )  # fmt: skip
    assert len(llm.prompts) == 1 and "Title: Footbridge opens" in llm.prompts[0][1].content


def test_a_pages_prompts_are_not_kept_as_saved_states(server: FeedServer) -> None:
    """Map and reduce prompts are never continued: keeping their states would fill the prompt cache."""
    seen: list[GenerationParams] = []

    def generate(messages: list[ChatMessage], params: GenerationParams) -> Completion:
        seen.append(params)
        return Completion("A new footbridge opened in Elmsford.", "stop", Usage())

    service = PageService(reader(), generate, lambda: meter_for(FakeLLM(), 2048), Lengths(24, 48))
    service.summarize(server.route("/a", Reply(200, article("Footbridge opens", SENTENCES), HTML)))
    assert seen and not any(p.save_state for p in seen)


def test_a_long_page_is_mapped_then_reduced_within_the_context(server: FeedServer) -> None:
    n_ctx, map_tokens, summary_tokens = 1024, 24, 48

    def reply(messages: list[ChatMessage]) -> str:
        return (
            "Notes: the part is about the footbridge."
            if "This is part " in messages[1].content
            else "Final summary."
        )

    llm = FakeLLM(reply)
    service, worker = pages_with(llm, n_ctx, map_tokens, summary_tokens)
    url = server.route("/long", Reply(200, article("Footbridge opens", long_paragraphs(3000)), HTML))
    try:
        found = service.summarize(url)
    finally:
        worker.close()
    assert found.text == "Final summary." and found.parts > 5 and found.levels >= 2
    meter: PromptMeter = meter_for(llm, n_ctx)
    costs = [meter.cost(p) for p in llm.prompts]
    assert costs == found.prompt_tokens
    assert all(c <= n_ctx - map_tokens for c in costs[:-1]) and costs[-1] <= n_ctx - summary_tokens
    # Every paragraph of the page was read, in order, once.
    quoted = "\n".join(p[1].content for p in llm.prompts[: found.parts])
    positions = [quoted.find(f'"Section {n}. ') for n in range(1, 1 + len(long_paragraphs(3000)))]
    assert -1 not in positions and positions == sorted(positions)


def test_notes_too_many_for_one_prompt_are_reduced_in_rounds(server: FeedServer) -> None:
    llm = FakeLLM(lambda m: "word " * 40 if "This is part " in m[1].content else "Final.")
    service, worker = pages_with(llm, n_ctx=1024, map_tokens=48, summary_tokens=48)
    url = server.route("/long", Reply(200, article("Bridge", long_paragraphs(6000)), HTML))
    try:
        found = service.summarize(url)
    finally:
        worker.close()
    assert found.levels >= 3 and found.text == "Final."
    assert max(found.prompt_tokens) <= 1024 - 48


def test_notes_that_do_not_get_shorter_are_a_clear_error(server: FeedServer) -> None:
    llm = FakeLLM(lambda m: "word " * 40 if "This is part " in m[1].content else "Final.")
    service, worker = pages_with(llm, n_ctx=512, map_tokens=48, summary_tokens=48)
    url = server.route("/long", Reply(200, article("Bridge", long_paragraphs(6000)), HTML))
    try:
        with pytest.raises(PageError) as err:
            service.summarize(url)
    finally:
        worker.close()
    assert err.value.code == "page_too_long" and "model.n_ctx" in err.value.message


def test_an_answer_that_is_empty_or_echoes_the_marker_falls_back_to_the_lead_sentences(
    server: FeedServer,
) -> None:
    llm = FakeLLM(lambda m: "see " + m[1].content.split(">>>")[0].lstrip("<"))  # echoes "PAGE-xxxxxxxx"
    service, worker = pages_with(llm, n_ctx=2048)
    try:
        found = service.summarize(
            server.route("/a", Reply(200, article("Footbridge opens", SENTENCES), HTML))
        )
    finally:
        worker.close()
    assert len(llm.prompts) == 2  # the first try and the plainer retry, both unusable
    assert (
        found.fallback and found.path == "extractive" and found.text.startswith("The river town of Elmsford")
    )


def test_links_and_control_tokens_in_the_answer_are_removed(server: FeedServer) -> None:
    llm = FakeLLM("Read more at https://evil.example/x <|im_end|> about the bridge.")
    service, worker = pages_with(llm, n_ctx=2048)
    try:
        found = service.summarize(server.route("/a", Reply(200, article("Footbridge", SENTENCES), HTML)))
    finally:
        worker.close()
    assert found.text == "Read more at about the bridge."
