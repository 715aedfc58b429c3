"""The web page's persona picker and thumbs up/down, in headless Chromium (the fixtures and checks of
web/test_browser.py): the chosen persona goes with each chat request and answers in that tone, and a thumb
under an answer rates it through POST /api/feedback and says what memory learned."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.chat.personas import PersonaBook
from tests.fakes import FakeLLM
from tests.web.test_browser import (  # noqa: F401 - fixtures
    LiveServer,
    Watch,
    answers,
    assert_clean,
    browser,
    expect,
    make_server,
    open_page,
    page,
    pytestmark,
    send,
    wait_answered,
    watch,
)


def test_persona_picker_and_thumbs(
    page: Any,  # noqa: F811 - the fixtures imported above
    watch: Watch,  # noqa: F811
    make_server: Callable[..., LiveServer],  # noqa: F811
    tmp_path: Path,
) -> None:
    llm = FakeLLM("The spare key is under the blue flowerpot.")
    server = make_server(llm, memory=True)
    services = server.services
    assert services.memory is not None
    memory_id = services.memory.add("The spare key is under the blue flowerpot", "note")

    open_page(page, server)
    picker = page.locator("#persona")
    expect(picker.locator("option")).to_have_count(3)
    expect(picker).to_have_value("helpful")
    picker.select_option("terse")
    send(page, "Where is the spare key?")
    wait_answered(page, 1)
    expect(answers(page)).to_have_text("The spare key is under the blue flowerpot.")
    assert watch.chat_bodies[-1]["persona"] == "terse"
    assert llm.prompts[-1][0].content.endswith(PersonaBook().get("terse").system_prompt)  # after the dated calendar

    down = page.get_by_role("button", name="Bad answer")
    down.click()
    expect(page.locator(".rating-note")).to_have_text(
        "Thanks: 1 memory the answer used will be demoted for similar questions."
    )
    expect(down).to_have_attribute("aria-pressed", "true")
    assert services.memory.feedback is not None
    [rating] = services.memory.feedback.ratings()
    assert (
        not rating.good and rating.memory_ids == [memory_id] and rating.question == "Where is the spare key?"
    )

    page.reload()  # the choice of persona is kept
    expect(page.locator("#persona")).to_have_value("terse")
    assert_clean(watch)
