"""The web page's reminders panel in real headless Chromium (the fixtures of tests/web/test_browser.py): a
timer set in chat is listed with the time left, and Cancel cancels it."""

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
    wait_answered,
    watch,
)


def test_a_timer_set_in_chat_is_listed_and_cancelled(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]  # noqa: F811
) -> None:
    server = make_server(FakeLLM("the model was asked"))
    open_page(page, server)
    expect(page.locator("#reminders-status")).to_contain_text("None set")
    send(page, "set a pasta timer for 8 minutes")
    wait_answered(page, 1)
    expect(page.locator("#messages .from-assistant .message-text")).to_contain_text("Pasta timer set for 8 minutes")
    item = page.locator("#reminders .reminder")
    expect(item).to_have_count(1)
    expect(item.locator(".reminder-name")).to_have_text("pasta timer")
    expect(item.locator(".reminder-left")).to_contain_text(" min ")
    with page.expect_response(lambda r: r.url.endswith("/cancel")) as cancelled:
        item.get_by_role("button", name="Cancel pasta timer").click()
    assert cancelled.value.ok, cancelled.value.text()
    expect(page.locator("#reminders .reminder")).to_have_count(0)
    listed = httpx.get(server.url + "/api/reminders", params={"all": "true"}, timeout=10).json()["data"]
    assert [r["state"] for r in listed] == ["cancelled"]
    assert_clean(watch)
