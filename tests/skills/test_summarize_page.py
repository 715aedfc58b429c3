"""The ``summarize`` and ``eli5`` skills (skills/summarize_page.py) on pages served on 127.0.0.1, with the
fake model: the answer cites the page's title and URL, the summary is stored as an untrusted memory with the
URL, and ``/summarize URL``, ``/eli5 URL`` and "summarize URL" work as chat shortcuts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.services import Services
from assistant.skillkit.registry import SkillRunner
from assistant.skillkit.shortcuts import SkillShortcuts
from tests.fakes import FakeLLM
from tests.feeds_server import FeedServer, Reply, serve
from tests.pages.test_pages import HTML, SENTENCES, article
from tests.settings_copy import changed
from tests.skill_fakes import FakeMemory


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve() as s:
        yield s


def test_summarize_skill_cites_the_page_and_stores_an_untrusted_memory(
    server: FeedServer, services: Services, fake_llm: FakeLLM
) -> None:
    fake_llm.reply = "Elmsford has a new footbridge."
    memory = FakeMemory()
    assert services.pages is not None and services.skills is not None
    # A runner built with the daemon's parts and the fake memory in place of its own (which is off).
    runner = SkillRunner(services.skills.registry, replace(services.skills.services, memory=memory))  # type: ignore[type-var]
    url = server.route("/a", Reply(200, article("Footbridge opens", SENTENCES), HTML))
    result = runner.run("summarize", {"url": url})
    assert result.text.splitlines() == [
        f"Summary of “Footbridge opens” — {url}",
        "Elmsford has a new footbridge.",
        f"({result.data['words']} words)",
    ]
    assert memory.added == [
        {
            "text": result.text,
            "source": "skill:summarize",
            "conversation_id": None,
            "metadata": {"url": url, "title": "Footbridge opens", "style": "summary"},
            "provenance": "untrusted",
        }
    ]
    assert services.skills.registry.get("summarize").remember is False  # a scheduled run does not store twice


def test_eli5_asks_for_simple_words(server: FeedServer, services: Services, fake_llm: FakeLLM) -> None:
    fake_llm.reply = "People built a bridge."
    assert services.skills is not None
    url = server.route("/a", Reply(200, article("Footbridge opens", SENTENCES), HTML))
    result = services.skills.run("eli5", {"url": url, "remember": False})
    assert result.text.startswith(f"Explained simply: “Footbridge opens” — {url}\nPeople built a bridge.")
    assert "ten-year-old" in fake_llm.prompts[-1][1].content


def test_slash_commands_and_phrases_run_the_skills_in_chat(server: FeedServer, services: Services) -> None:
    assert services.skills is not None
    shortcuts = SkillShortcuts(services.skills)
    url = server.route("/a", Reply(200, article("Footbridge opens", SENTENCES), HTML))
    assert shortcuts.match(f"/summarize {url}") == ("summarize", {"url": url})
    assert shortcuts.match(f"/eli5 <{url}>") == ("eli5", {"url": f"<{url}>"})
    assert shortcuts.match(f"please summarize {url}") == ("summarize", {"url": url})
    assert shortcuts.match("summarize the meeting notes") is None  # not a URL: the model answers
    query = f"{url}?q=bridge&page=2"  # a URL with "=" in it is still the URL, bare or as url=...
    assert shortcuts.match(f"/summarize {query}") == ("summarize", {"url": query})
    assert shortcuts.match(f"/summarize url={query}") == ("summarize", {"url": query})
    answer = shortcuts.answer(f"/summarize {url}", conversation_id="c1")
    assert answer is not None and not isinstance(answer, str)
    assert answer.untrusted and url in answer.text
    unusable = server.route("/pdf", Reply(200, b"%PDF", [("Content-Type", "application/pdf")]))
    assert shortcuts.answer(f"/summarize {unusable}", conversation_id="c1") == (
        f"/summarize: {unusable} is not a web page (application/pdf); only HTML and plain-text pages can be "
        "summarized"
    )


def test_without_pages_the_skill_says_which_setting_turns_them_on(
    settings: Settings, fake_llm: FakeLLM
) -> None:
    from assistant.services import build_services

    services = build_services(changed(settings, pages={"enabled": False}), llm=fake_llm)
    assert services.pages is None and services.skills is not None
    with pytest.raises(BadRequest) as err:
        services.skills.run("summarize", {"url": "https://example.org/"})
    assert err.value.code == "no_pages" and "[pages] enabled = true" in err.value.message


def test_pages_are_a_part_turned_off_by_config(settings: Settings, fake_llm: FakeLLM) -> None:
    from assistant.services import build_services

    services = build_services(changed(settings, pages={"enabled": False}), llm=fake_llm)
    try:
        assert services.pages is None
    finally:
        services.close()
