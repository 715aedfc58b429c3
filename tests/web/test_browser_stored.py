"""The web page in real headless Chromium (the fixtures of tests/web/test_browser.py), on what outlives one
visit: thumbs on an answer of a conversation reloaded from the server, and a timer that counts down on the
page and then says it is done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.fakes import FakeLLM
from tests.web.test_browser import (  # noqa: F401 - fixtures
    LiveServer,
    Watch,
    assert_clean,
    browser,
    expect,
    make_server,
    open_page,
    page,
    pytestmark,
    send,
    stored_conversation,
    wait_answered,
    watch,
)


def test_feedback_on_an_answer_of_a_reloaded_conversation(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]  # noqa: F811
) -> None:
    server = make_server(FakeLLM("Your sister Ana lives in Porto."), memory=True)
    note = httpx.post(
        server.url + "/api/memories", json={"text": "My sister Ana lives in Porto."}, timeout=10
    )
    assert note.status_code in (200, 201), note.text
    open_page(page, server)
    send(page, "Where does my sister live?")
    wait_answered(page, 1)
    cid = stored_conversation(page)
    assert cid
    page.reload()  # a new visit: the answer comes back from the stored conversation, with its turn id
    answer = page.locator("#messages .from-assistant")
    expect(answer.locator(".message-text")).to_have_text("Your sister Ana lives in Porto.")
    good = answer.get_by_role("button", name="Good answer")
    with page.expect_response(lambda r: r.url.endswith("/api/feedback")) as rated:
        good.click()
    assert rated.value.ok, rated.value.text()
    body = rated.value.json()
    used = [m for m in body["memories"] if m.get("effect") != "not used"]
    assert [m["text"] for m in used] == ["My sister Ana lives in Porto."], body
    expect(answer.locator(".rating-note")).to_contain_text("1 memory the answer used will be preferred")
    expect(good).to_have_attribute("aria-pressed", "true")
    # the server holds the rating against the stored turn the page was shown after the reload
    turns = server.services.conversations.turns(cid)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert_clean(watch)


def test_a_timer_counts_down_on_the_page_and_says_when_it_is_done(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]  # noqa: F811
) -> None:
    server = make_server(FakeLLM("the model was asked"))
    open_page(page, server)
    send(page, "set an egg timer for 6 seconds")
    wait_answered(page, 1)
    left = page.locator("#reminders .reminder .reminder-left")
    expect(left).to_contain_text(" s left")
    first = left.text_content()
    # the page's own clock ticks the time left down, without asking the server again
    page.wait_for_function(
        "(before) => { const e = document.querySelector('#reminders .reminder .reminder-left');"
        " return e !== null && e.textContent !== before; }",
        arg=first,
        timeout=15_000,
    )
    # then the daemon says it is done, on the page's notification list (from the SSE stream)
    done = page.locator("#notifications .notification-title")
    expect(done.first).to_contain_text("Timer done: egg", timeout=20_000)
    expect(page.locator("#reminders .reminder")).to_have_count(0, timeout=20_000)
    assert_clean(watch)
