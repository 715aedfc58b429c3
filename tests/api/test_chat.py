"""The OpenAI-compatible chat endpoint with a fake backend: shapes, errors, conversations."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.fakes import FakeLLM


def sse_events(text: str) -> list[str]:
    return [line[len("data:") :].strip() for line in text.splitlines() if line.startswith("data:")]


def test_non_streaming_shape(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions", json={"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello from the fake model."}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 5
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 5
    assert r.headers["x-conversation-id"] == body["conversation_id"]


def test_streaming_ends_with_done_and_usage(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello from the fake model."
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finals[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5


def test_max_tokens_gives_length(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    )
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["choices"][0]["message"]["content"] == "Hello from"


def test_models_and_health(client: TestClient) -> None:
    assert client.get("/v1/models").json()["data"][0]["id"] == "fake-model"
    assert client.get("/healthz").json()["status"] == "ok"


def test_conversation_continues_with_only_the_new_message(client: TestClient, fake_llm: FakeLLM) -> None:
    r = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "my name is Ada"}]}
    )
    cid = r.json()["conversation_id"]
    r = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "what is my name?"}], "conversation_id": cid},
    )
    assert r.json()["conversation_id"] == cid
    prompt = fake_llm.prompts[-1]
    assert [m.role for m in prompt] == ["system", "user", "assistant", "user"]
    assert prompt[1].content == "my name is Ada"
    stored = client.get(f"/api/conversations/{cid}").json()
    assert [m["content"] for m in stored["messages"]] == [
        "my name is Ada",
        "Hello from the fake model.",
        "what is my name?",
        "Hello from the fake model.",
    ]


def test_conversation_id_header_and_client_chosen_id(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"X-Conversation-Id": "kitchen-1"},
    )
    assert r.json()["conversation_id"] == "kitchen-1"
    assert len(client.get("/api/conversations/kitchen-1").json()["messages"]) == 2
    assert any(c["id"] == "kitchen-1" for c in client.get("/api/conversations").json()["data"])


def test_deleting_a_conversation_forgets_it(client: TestClient, fake_llm: FakeLLM) -> None:
    for cid in ("keep-1", "drop-1"):
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "conversation_id": cid})
    r = client.delete("/api/conversations/drop-1")
    assert r.status_code == 200 and r.json() == {"id": "drop-1", "deleted": True}
    assert client.get("/api/conversations/drop-1").status_code == 404
    assert [c["id"] for c in client.get("/api/conversations").json()["data"]] == ["keep-1"]
    assert len(client.get("/api/conversations/keep-1").json()["messages"]) == 2
    assert client.delete("/api/conversations/drop-1").status_code == 404  # already gone
    # the same id starts afresh: the model sees no earlier turns
    client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "again"}], "conversation_id": "drop-1"})
    assert [m.content for m in fake_llm.prompts[-1] if m.role != "system"] == ["again"]


def test_request_system_prompt_replaces_default(client: TestClient, fake_llm: FakeLLM) -> None:
    client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "system", "content": "Be a pirate."}, {"role": "user", "content": "hi"}]},
    )
    assert fake_llm.prompts[-1][0].content == "Be a pirate."


def test_content_parts_are_joined(client: TestClient, fake_llm: FakeLLM) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
            ]
        },
    )
    assert r.status_code == 200
    assert fake_llm.prompts[-1][-1].content == "ab"


def assert_openai_error(r, status: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "code"}
    assert fragment in err["message"]


def test_errors_use_openai_shape(client: TestClient) -> None:
    assert_openai_error(client.post("/v1/chat/completions", json={}), 400, "messages")
    assert_openai_error(client.post("/v1/chat/completions", json={"messages": []}), 400, "messages")
    assert_openai_error(
        client.post("/v1/chat/completions", json={"messages": [{"role": "wizard", "content": "x"}]}),
        400,
        "role",
    )
    assert_openai_error(
        client.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "x"}]}),
        400,
        "last message",
    )
    assert_openai_error(
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "n": 2}),
        400,
        "n=1",
    )
    assert_openai_error(
        client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "temperature": 9}
        ),
        400,
        "temperature",
    )
    assert_openai_error(
        client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}], "conversation_id": "bad id!"},
        ),
        400,
        "conversation_id",
    )
    assert_openai_error(
        client.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
        "invalid request",
    )
    assert_openai_error(
        client.post(
            "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
            },
        ),
        400,
        "not supported",
    )
    assert_openai_error(client.get("/api/conversations/nope"), 404, "no conversation")
    assert_openai_error(client.get("/no/such/route"), 404, "Not Found")


def test_failed_request_stores_nothing(client: TestClient) -> None:
    client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}], "conversation_id": "c1", "temperature": 9},
    )
    assert client.get("/api/conversations/c1").status_code == 404


def test_backend_failure_is_a_clear_error(client: TestClient, fake_llm: FakeLLM) -> None:
    def boom(_messages):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")

    fake_llm.reply = boom
    assert_openai_error(
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}),
        502,
        "kaboom",
    )
    r = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "stream": True}
    )
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    assert "kaboom" in json.loads(events[-2])["error"]["message"]
