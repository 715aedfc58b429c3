"""The web page in real headless Chromium (Debian's package) driven by Playwright, against a real uvicorn
server on a free loopback port. Any request the page makes to anything but 127.0.0.1 fails the test."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from assistant.app import create_app
from assistant.chat.orchestrator import Recall
from assistant.config import load_settings
from assistant.services import Services, build_services
from tests.fakes import FakeLLM
from tests.memory_fakes import HashingEmbedder

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="/usr/bin/chromium is absent: run `bash deploy/system-deps.sh` (as root)",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
)
expect = sync_api.expect


# ---------------------------------------------------------------- the server


class LiveServer:
    """create_app(services) on uvicorn in a thread, on a loopback socket bound before it starts."""

    def __init__(self, services: Services) -> None:
        import uvicorn

        self.services = services
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(services), log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:  # polling a starting server, not waiting for time to pass
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@dataclass
class FixedRecall:
    """A MemoryHook that recalls the same memories for every question (the real one is tested elsewhere)."""

    items: list[dict[str, Any]]
    remembered: list[tuple[str, str]] = field(default_factory=list)

    def recall(self, query: str, *, conversation_id: str, exclude_texts: Sequence[str]) -> Recall:
        block = "Memories:\n" + "\n".join(f"- {m['text']}" for m in self.items)
        return Recall(block, [dict(m) for m in self.items])

    def remember_turns(self, conversation_id: str, turns: Sequence[tuple[str, str]], at: Any) -> None:
        self.remembered.extend(turns)


MEMORIES = [
    {
        "id": "m1",
        "text": "The user's sister Ana lives in Porto.",
        "source": "chat",
        "created_at": "2026-01-10T09:30:00+00:00",
        "score": 0.8123,
        "retrievers": ["vector", "bm25"],
    },
    {
        "id": "m2",
        "text": "The user prefers trains to planes.",
        "source": "note",
        "created_at": "2026-01-12T18:05:00+00:00",
        "score": 0.4567,
        "retrievers": ["bm25"],
    },
]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def make(
        llm: FakeLLM,
        *,
        memories: list[dict[str, Any]] | None = None,
        memory: bool = False,
        token: str | None = None,
        scheduler: bool = False,
        notify: bool = True,
        **server_settings: Any,
    ) -> LiveServer:
        """The daemon on ``llm``: recall of the fixed ``memories``, or with ``memory`` real memory on the
        hashing embedder (recall, ratings, rules); ``server_settings`` are more server.* keys."""
        settings = load_settings(
            None, data_dir=tmp_path / "data", server={"api_token": token, **server_settings},
            memory={"enabled": memory}, scheduler={"enabled": scheduler}, notify={"enabled": notify},
        )  # fmt: skip
        services = build_services(
            settings,
            llm=llm,
            embedder=HashingEmbedder() if memory else None,
            recall=FixedRecall(memories) if memories is not None else None,
        )
        server = LiveServer(services).__enter__()
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.__exit__(None, None, None)


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Playwright gives every launch() a fresh, empty user-data dir of its own, removed on close.
    expect.set_options(timeout=15_000)  # room for a busy 2-core CI machine; a passing check returns at once
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@dataclass
class Watch:
    """What the page asked for and what went wrong in it."""

    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    chat_bodies: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Any, watch: Watch, make_server: Callable[..., LiveServer]) -> Iterator[Any]:
    # (make_server first, so the page closes its streams before the servers stop)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, service_workers="block")

    def guard(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            watch.foreign.append(url)
            route.abort()

    def on_request(request: Any) -> None:
        watch.requests.append(request.url)
        if request.method == "POST" and request.url.endswith("/v1/chat/completions"):
            watch.chat_bodies.append(json.loads(request.post_data or "{}"))

    context.route("**/*", guard)
    context.on("request", on_request)
    pg = context.new_page()
    pg.on("pageerror", lambda exc: watch.errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda m: watch.errors.append(f"console: {m.text}") if m.type == "error" else None)
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert watch.foreign == [], f"the page made requests beyond 127.0.0.1: {watch.foreign}"


def assert_clean(watch: Watch) -> None:
    """No script error and no CSP violation (Chromium reports those as console errors). An HTTP error status
    is logged as "Failed to load resource"; the page handles those (a part that is turned off hides its section), so they pass."""
    assert [e for e in watch.errors if "Failed to load resource" not in e] == []
    assert watch.foreign == []


def open_page(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    expect(page.locator("#model")).to_have_text("Model: fake-model")


def send(page: Any, text: str) -> None:
    page.locator("#message").fill(text)
    page.locator("#message").press("Enter")


def answers(page: Any) -> Any:
    return page.locator("#messages .from-assistant .message-text")


def wait_answered(page: Any, n: int) -> None:
    expect(page.locator("#messages .from-assistant:not(.streaming)")).to_have_count(n)
    expect(page.locator("#send")).to_be_enabled()


def stored_conversation(page: Any) -> str | None:
    return page.evaluate("localStorage.getItem('assistant.conversation')")


# ---------------------------------------------------------------- the tests


def test_answer_streams_word_by_word_with_recalled_memories(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    gate = threading.Semaphore(0)  # one word per release()
    server = make_server(FakeLLM("Ana lives in Porto, by train.", gate=gate), memories=MEMORIES)
    try:
        open_page(page, server)
        send(page, "Where does my sister live?")
        user = page.locator("#messages .from-user .message-text")
        expect(user).to_have_text("Where does my sister live?")
        # The first chunk arrives before any token: the recalled memories show while the answer is empty.
        answer = page.locator("#messages .from-assistant")
        expect(answer).to_have_class("message from-assistant streaming")
        expect(answer.locator(".recalled summary")).to_have_text("Recalled 2 memories")
        expect(answers(page)).to_have_text("")
        expect(page.locator("#stop")).to_be_visible()
        gate.release(1)
        expect(answers(page)).to_have_text("Ana")
        gate.release(2)
        expect(answers(page)).to_have_text("Ana lives in")
        expect(answer).to_have_class("message from-assistant streaming")  # still generating
        gate.release(10)
        wait_answered(page, 1)
        expect(answers(page)).to_have_text("Ana lives in Porto, by train.")
        expect(page.locator("#stop")).to_be_hidden()
        # the memories, each with its source, score and retrievers
        answer.locator(".recalled summary").click()
        memories = answer.locator(".recalled-list .memory")
        expect(memories).to_have_count(2)
        expect(memories.nth(0).locator(".memory-text")).to_have_text("The user's sister Ana lives in Porto.")
        expect(memories.nth(0).locator(".memory-meta")).to_contain_text("score 0.812")
        expect(memories.nth(0).locator(".memory-meta")).to_contain_text("via vector + bm25")
        expect(memories.nth(1).locator(".memory-meta")).to_contain_text("note")
        # the page keeps the id the server gave, and the server stored the turn under it
        cid = stored_conversation(page)
        assert cid and server.services.conversations.exists(cid)
        assert [t.content for t in server.services.conversations.turns(cid)] == [
            "Where does my sister live?",
            "Ana lives in Porto, by train.",
        ]
        assert watch.chat_bodies == [
            {
                "messages": [{"role": "user", "content": "Where does my sister live?"}],
                "stream": True,
                "memory": True,
            }
        ]  # memory: the user's own page (a plain OpenAI client's chats stay out of memory)
        assert_clean(watch)
    finally:
        gate.release(100)


def test_stop_cancels_the_generation(page: Any, watch: Watch, make_server: Callable[..., LiveServer]) -> None:
    gate = threading.Semaphore(0)  # one word per release()
    llm = FakeLLM("one two three four five", gate=gate)
    server = make_server(llm)
    try:
        open_page(page, server)
        send(page, "count")
        gate.release(1)
        expect(answers(page)).to_have_text("one")
        page.locator("#stop").click()
        expect(page.locator("#messages .from-assistant .note")).to_contain_text("Stopped")
        assert llm.cancelled.wait(10), "the server did not cancel the generation"
        cid = stored_conversation(page)
        assert cid, "the page did not keep the conversation id the server sent with the first word"
        assert server.services.conversations.turns(cid) == []  # nothing half-written kept
        expect(page.locator("#send")).to_be_enabled()
        assert_clean(watch)
    finally:
        gate.release(100)


def test_conversation_survives_a_reload_and_new_conversation_starts_fresh(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    llm = FakeLLM(lambda messages: f"You said: {messages[-1].content}")
    server = make_server(llm)
    open_page(page, server)
    send(page, "first question")
    wait_answered(page, 1)
    send(page, "second question")
    wait_answered(page, 2)
    cid = stored_conversation(page)
    assert cid
    # Only the new message is sent, with the conversation id; the server supplies the history.
    assert watch.chat_bodies[1] == {
        "messages": [{"role": "user", "content": "second question"}],
        "stream": True,
        "memory": True,
        "conversation_id": cid,
    }
    assert [m.content for m in llm.prompts[-1][1:]] == [
        "first question",
        "You said: first question",
        "second question",
    ]

    page.reload()
    texts = page.locator("#messages .message-text")
    expect(texts).to_have_text(
        ["first question", "You said: first question", "second question", "You said: second question"]
    )
    expect(page.locator("#messages .message").first).to_have_attribute("data-role", "user")
    assert any(u.endswith(f"/api/conversations/{cid}") for u in watch.requests)
    assert stored_conversation(page) == cid

    page.locator("#new-conversation").click()
    expect(page.locator("#messages .message")).to_have_count(0)
    assert stored_conversation(page) is None
    send(page, "third question")
    wait_answered(page, 1)
    new_cid = stored_conversation(page)
    assert new_cid and new_cid != cid
    assert "conversation_id" not in watch.chat_bodies[-1]
    page.reload()
    expect(texts).to_have_text(["third question", "You said: third question"])
    assert_clean(watch)


def test_model_output_is_text_never_html(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    server_box: dict[str, LiveServer] = {}

    def reply(_: object) -> str:
        port = server_box["s"].port
        return f'<script>window.pwned=1</script><img src="http://127.0.0.1:{port}/pixel">'

    server = make_server(FakeLLM(reply), memories=[{**MEMORIES[0], "text": "<b>bold</b><img src=x>"}])
    server_box["s"] = server
    evil = reply(None)
    open_page(page, server)
    send(page, "<i>hi</i>")
    wait_answered(page, 1)
    expect(answers(page)).to_have_text(evil)
    expect(page.locator("#messages .from-user .message-text")).to_have_text("<i>hi</i>")
    page.locator("#messages .recalled summary").click()
    expect(page.locator("#messages .memory-text")).to_have_text("<b>bold</b><img src=x>")
    for _ in range(2):
        assert page.locator("#messages script, #messages img, #messages b, #messages i").count() == 0
        assert page.evaluate("window.pwned") is None
        assert not [u for u in watch.requests if "/pixel" in u or u.endswith("/x")]
        page.reload()  # the same answer rendered again from the stored conversation
        expect(page.locator("#messages .message-text")).to_have_text(["<i>hi</i>", evil])
    assert_clean(watch)


def test_token_is_asked_for_on_401_and_kept(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(FakeLLM("Authorised answer."), token="tok-123")
    page.goto(server.url + "/")  # /healthz names the model only to a caller with the token (issue 25)
    # The page loads without a token; its first API calls get 401, and one dialog asks for the token.
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    page.locator("#token-input").fill("wrong")
    page.locator("#token-save").click()
    expect(page.locator("#token-reason")).to_contain_text("refused")  # asked again
    page.locator("#token-input").fill("tok-123")
    page.locator("#token-save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#model")).to_have_text("Model: fake-model")
    expect(page.locator("#skills .skill").first).to_be_visible()  # the calls that waited went through
    expect(page.locator("#notifications-state")).to_have_text("live")  # EventSource with ?token=
    send(page, "hello")
    wait_answered(page, 1)
    expect(answers(page)).to_have_text("Authorised answer.")
    assert page.evaluate("localStorage.getItem('assistant.token')") == "tok-123"
    page.reload()
    expect(page.locator("#messages .message-text")).to_have_text(["hello", "Authorised answer."])
    expect(dialog).to_be_hidden()
    assert_clean(watch)


def test_phone_sized_screen_has_no_sideways_scroll(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(
        FakeLLM("A long answer " + "word " * 80 + "https://example.invalid/" + "x" * 200), notify=False
    )
    page.set_viewport_size({"width": 390, "height": 844})
    open_page(page, server)
    # parts this daemon runs without (they answer 503 "part_disabled") are hidden, not shown broken
    expect(page.locator("#notifications-section")).to_be_hidden()
    expect(page.locator("#schedules-section")).to_be_hidden()
    expect(page.locator("#skills-section")).to_be_visible()
    send(page, "tell me something long")
    wait_answered(page, 1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px screen"
    box = page.locator("#send").bounding_box()
    assert box and box["height"] >= 44 and box["x"] + box["width"] <= 390
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-phone.png"))
    assert_clean(watch)


# ---------------------------------------------------------------- notifications, skills, schedules


def test_notification_arrives_while_the_page_is_open(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(FakeLLM())
    earlier = {"title": "Sent before the page opened", "body": "from the history", "source": "test"}
    assert httpx.post(server.url + "/api/notifications", json=earlier, timeout=10).status_code == 201
    open_page(page, server)
    expect(page.locator("#notifications-state")).to_have_text("live")
    history = page.locator("#notifications .notification")
    expect(history).to_have_count(1)
    expect(history.locator(".notification-title")).to_have_text("Sent before the page opened")
    r = httpx.post(
        server.url + "/api/notifications",
        json={
            "title": "Train <b>leaves</b> at 18:05",
            "body": "Platform 4 <img src=/pixel>",
            "source": "test",
        },
        timeout=10,
    )
    assert r.status_code == 201, r.text
    expect(history).to_have_count(2)
    item = page.locator("#notifications .notification").first  # the newest on top
    expect(item.locator(".notification-title")).to_have_text("Train <b>leaves</b> at 18:05")
    expect(item.locator(".notification-body")).to_have_text("Platform 4 <img src=/pixel>")
    expect(item.locator(".notification-meta")).to_contain_text("test")
    expect(page.locator("#toasts .toast")).to_have_count(1)  # only the live one pops up
    expect(page.locator("#toasts .toast")).to_contain_text("Train <b>leaves</b> at 18:05")
    assert page.locator("#notifications img, #notifications b").count() == 0
    assert not [u for u in watch.requests if "/pixel" in u]
    assert_clean(watch)


def test_run_a_skill_from_the_page(page: Any, watch: Watch, make_server: Callable[..., LiveServer]) -> None:
    server = make_server(FakeLLM("It is noon."))
    listed = httpx.get(server.url + "/api/skills", timeout=10).json()
    names = [s["name"] for s in listed["data"]]
    assert "time" in names
    open_page(page, server)
    expect(page.locator("#skills .skill .skill-name")).to_have_text(names)
    skill = page.locator('#skills .skill[data-skill="time"]')
    with page.expect_response(lambda r: r.url.endswith("/api/skills/time/run")) as run:
        skill.get_by_role("button", name="Run skill time now").click()
    assert run.value.ok, run.value.text()
    result = run.value.json()
    output = skill.locator(".skill-output")
    expect(output).to_contain_text(result["text"])
    expect(output).not_to_have_class("skill-output error")
    expect(skill.get_by_role("button", name="Run skill time now")).to_be_enabled()
    assert_clean(watch)


def test_schedules_are_listed(page: Any, watch: Watch, make_server: Callable[..., LiveServer]) -> None:
    server = make_server(FakeLLM(), scheduler=True)
    r = httpx.post(
        server.url + "/api/schedules", json={"skill": "time", "schedule": "every 15 minutes"}, timeout=10
    )
    assert r.status_code == 201, r.text
    open_page(page, server)
    item = page.locator("#schedules .schedule")
    expect(item).to_have_count(1)
    expect(item.locator(".schedule-name")).to_have_text("time")
    expect(item.locator("dd").first).to_have_text("every 15 minutes")
    expect(item.locator("dt")).to_contain_text(["When", "Next run"])
    assert_clean(watch)


def test_screenshot_of_the_page_in_use(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    """A desktop-sized screenshot with every part on show, kept in test-artifacts/ (docs/web.png is one)."""
    answer = (
        "Ana lives in **Porto**. The train from here takes about three hours:\n\n"
        "| train | leaves | arrives |\n|---|---|---|\n| IC 521 | 07:40 | 10:31 |\n| AP 131 | 09:09 | 11:50 |\n\n"
        "- the *07:40* is the fastest\n- book at [cp.pt](https://www.cp.pt/passageiros/en)"
    )
    server = make_server(FakeLLM(answer), memories=MEMORIES, scheduler=True)
    httpx.post(
        server.url + "/api/schedules", json={"skill": "time", "schedule": "every weekday at 7:30"}, timeout=10
    )
    open_page(page, server)
    expect(page.locator("#notifications-state")).to_have_text("live")
    send(page, "How long is the train to my sister's?")
    wait_answered(page, 1)
    page.locator("#messages .recalled summary").click()
    httpx.post(
        server.url + "/api/notifications",
        json={"title": "Morning briefing", "body": "Rain after 3 pm. Two new headlines.", "source": "digest"},
        timeout=10,
    )
    expect(page.locator("#notifications .notification")).to_have_count(1)
    page.locator('#skills .skill[data-skill="time"] button').click()
    expect(page.locator('#skills .skill[data-skill="time"] .skill-output')).not_to_have_text("Running…")
    page.locator("#toasts .toast").evaluate("t => t.remove()")  # the transient toast would cover the panel
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "web-desktop.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    assert_clean(watch)


def test_controls_have_names_and_work_from_the_keyboard(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(FakeLLM("Typed without a mouse."))
    open_page(page, server)
    expect(page.locator("#skills .skill").first).to_be_visible()
    visible = [b for b in page.get_by_role("button").all() if b.is_visible()]
    assert len(visible) >= 3, f"only {len(visible)} visible buttons: the page did not load"
    for button in visible:
        name = button.get_attribute("aria-label") or button.text_content() or ""
        assert name.strip(), f"a button without a name: {button}"
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the message box")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.type("typed question")
    page.keyboard.press("Enter")
    wait_answered(page, 1)
    expect(answers(page)).to_have_text("Typed without a mouse.")
    assert_clean(watch)


def test_a_busy_model_gets_a_clear_message_and_the_text_back(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    from assistant.llm.types import ChatMessage, GenerationParams

    gate = threading.Semaphore(0)
    llm = FakeLLM("busy", gate=gate)
    server = make_server(llm, queue_size=1)
    worker = server.services.worker
    held = [
        threading.Thread(target=worker.generate_text, args=([ChatMessage("user", "x")], GenerationParams()))
        for _ in range(2)
    ]
    try:
        held[0].start()
        assert llm.started.wait(10)  # one generating ...
        held[1].start()
        deadline = time.monotonic() + 10
        while worker.waiting < 1:  # ... and one waiting: the queue is full
            assert time.monotonic() < deadline
            time.sleep(0.01)
        open_page(page, server)
        send(page, "are you there?")
        note = page.locator("#messages .from-assistant .note.error")
        expect(note).to_contain_text("the model is busy")
        expect(note).to_contain_text("try again in 2 s")  # from Retry-After
        expect(page.locator("#message")).to_have_value("are you there?")
        expect(page.locator("#send")).to_be_enabled()
    finally:
        gate.release(100)
        for t in held:
            t.join(timeout=10)
    assert_clean(watch)


# ---------------------------------------------------------------- Markdown in answers

MARKDOWN_ANSWER = (
    "## Car\n\nThe **tyres** are *new* and snake_case_name stays. See [the manual](https://example.com/manual) "
    "or https://example.org/x.\n\n- one\n- two with `code`\n\n1. first\n2. second\n\n> a quote\n\n"
    "```python\nprint('<b>hi</b>')\n```\n\n| part | price |\n|---|---:|\n| tyre | 80 |\n| oil | 12 |\n\n---\nEnd."
)


def test_answer_markdown_is_rendered(page: Any, watch: Watch, make_server: Callable[..., LiveServer]) -> None:
    server = make_server(FakeLLM(MARKDOWN_ANSWER))
    open_page(page, server)
    send(page, "tell me about the car")
    wait_answered(page, 1)
    for _ in range(2):  # as streamed, then from the stored conversation
        body = answers(page).first
        expect(body.locator("h4")).to_have_text("Car")
        expect(body.locator("strong")).to_have_text("tyres")
        expect(body.locator("em")).to_have_text("new")
        expect(body).to_contain_text("snake_case_name stays")
        link = body.locator('a[href="https://example.com/manual"]')
        expect(link).to_have_text("the manual")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(body.locator(".link-target").first).to_have_text(" (example.com)")  # the target is shown
        expect(body.locator('a[href="https://example.org/x"]')).to_have_text("https://example.org/x")
        expect(body.locator("ul > li")).to_have_text(["one", "two with code"])
        expect(body.locator("ul code")).to_have_text("code")
        expect(body.locator("ol > li")).to_have_text(["first", "second"])
        expect(body.locator("blockquote")).to_have_text("a quote")
        expect(body.locator("pre code")).to_have_text("print('<b>hi</b>')")
        expect(body.locator("th")).to_have_text(["part", "price"])
        expect(body.locator("td")).to_have_text(["tyre", "80", "oil", "12"])
        expect(body.locator("hr")).to_have_count(1)
        assert body.locator("b").count() == 0
        expect(body).not_to_contain_text("**")
        expect(body).not_to_contain_text("##")
        page.reload()
        expect(page.locator("#messages .from-assistant")).to_have_count(1)
    assert_clean(watch)


def test_hostile_markdown_is_shown_never_run_nor_fetched(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    server_box: dict[str, LiveServer] = {}

    def reply(_: object) -> str:
        base = f"http://127.0.0.1:{server_box['s'].port}"
        return (
            f'<img src="{base}/pixel.png" onerror="window.pwned=1"> [click me](javascript:window.pwned=2) '
            f"![a cat]({base}/cat.png) [data](data:text/html,<script>window.pwned=3</script>) "
            f'**<script>window.pwned=4</script>** <a href="{base}/a">x</a> [rel](/api/memories)'
        )

    server = make_server(FakeLLM(reply))
    server_box["s"] = server
    open_page(page, server)
    send(page, "hi")
    wait_answered(page, 1)
    for _ in range(2):
        body = answers(page).first
        expect(body).to_contain_text('<img src="')
        expect(body).to_contain_text("click me (javascript:window.pwned=2)")
        expect(body).to_contain_text("<script>window.pwned=4</script>")  # bold, as text
        expect(body.locator("strong")).to_have_count(1)
        assert page.locator("#messages img, #messages script, #messages iframe").count() == 0
        hrefs = body.locator("a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
        assert hrefs and all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
        assert body.locator("a").evaluate_all("els => els.every(a => a.rel === 'noopener noreferrer')")
        expect(body.locator("a", has_text="image: a cat")).to_have_count(1)  # a link at most, never fetched
        assert page.evaluate("window.pwned") is None
        assert not [u for u in watch.requests if u.endswith((".png", "/a", "/pixel.png"))]
        page.reload()
        expect(page.locator("#messages .from-assistant")).to_have_count(1)
    assert_clean(watch)


def test_icons_need_no_emoji_font_and_skill_suggestions_are_not_schedules(
    page: Any, watch: Watch, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(FakeLLM(), scheduler=True)
    skills = httpx.get(server.url + "/api/skills", timeout=10).json()["data"]
    suggested = [s["name"] for s in skills if s.get("schedule") and s["name"] != "time"]
    r = httpx.post(
        server.url + "/api/schedules", json={"skill": "time", "schedule": "every 15 minutes"}, timeout=10
    )
    assert r.status_code == 201, r.text
    open_page(page, server)
    card = page.locator('#skills .skill[data-skill="time"]')
    expect(card.locator(".skill-scheduled")).to_have_text("Scheduled: every 15 minutes")
    for name in suggested:
        other = page.locator(f'#skills .skill[data-skill="{name}"]')
        expect(other.locator(".skill-suggested")).to_contain_text("Suggested: ")
        expect(other.locator(".skill-scheduled")).to_have_count(0)
    send(page, "hello")
    wait_answered(page, 1)
    rate = page.locator("#messages .rating .rate")
    expect(rate).to_have_text([" Good", " Bad"])  # words and an SVG, no emoji
    expect(page.locator("#messages .rating svg.icon")).to_have_count(2)
    html = page.content()
    assert not any(0x1F000 <= ord(c) <= 0x1FFFF or 0x2600 <= ord(c) <= 0x27BF for c in html)
    assert_clean(watch)
