"""Memory against the real parts: the bundled MiniLM embedder, a Chroma directory, a `chroma run` server,
and `assistant eval retrieval` on a tiny BEIR folder. Slow-marked; the embedder is loaded once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from memory.embedder import SentenceTransformerEmbedder
from memory.opening import open_memory
from memory.recall import MemoryRecall
from tests.daemon import free_port
from tests.fakes import FixedClock

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    e = SentenceTransformerEmbedder()
    e.load()
    return e


OFFLINE_CHILD = textwrap.dedent(
    """
    import json, os, socket
    attempts = []

    def deny(*args, **kwargs):
        attempts.append(repr(args)[:200])
        raise OSError("no network in this test")

    socket.socket.connect = socket.socket.connect_ex = deny
    socket.getaddrinfo = socket.create_connection = deny
    before = dict(os.environ)
    from memory.embedder import SentenceTransformerEmbedder
    vectors = SentenceTransformerEmbedder().embed(["offline, please"])
    hf = sorted(k for k in os.environ if k.startswith(("HF_", "TRANSFORMERS_")) and before.get(k) != os.environ[k])
    print(json.dumps({"dim": len(vectors[0]), "attempts": attempts, "set": hf}))
    """
)


def test_embedder_loads_offline_without_setting_the_environment(tmp_path: Path) -> None:
    """No HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE given or set, every connection refused: the model still
    loads from the package directory, nothing asks the network, and no HF variable is added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "ASSISTANT_"))}
    env |= {"HOME": str(tmp_path / "home"), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run([sys.executable, "-c", OFFLINE_CHILD], capture_output=True, text=True, env=env,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"dim": 384, "attempts": [], "set": []}


def test_embedder_refuses_a_model_name_instead_of_downloading() -> None:
    e = SentenceTransformerEmbedder(model_path=Path("sentence-transformers/all-MiniLM-L6-v2"))
    with pytest.raises(FileNotFoundError, match="embedding model directory"):
        e.load()
    assert not e.loaded


def test_real_embedder_finds_a_paraphrase_without_shared_words(
    tmp_path: Path, clock: FixedClock, embedder: SentenceTransformerEmbedder
) -> None:
    assert not SentenceTransformerEmbedder().loaded  # building one loads nothing
    m = open_memory(tmp_path / "mem", clock, embedder=embedder)
    target = m.add("My sister Alice lives in Lisbon.", source="user", conversation_id="c1")
    for text in ["The car needs new tyres before winter.", "Dentist appointment on Friday at 3pm.",
                 "Pasta recipe: garlic, olive oil, chilli.", "The wifi router is in the hallway cupboard."]:
        m.add(text, source="note")
    hits = m.search("Which city is my sibling in?", k=3)
    assert hits[0].record.id == target
    assert list(hits[0].retrievers) == ["dense"]  # no shared word: only the embedder could find it
    m.close()
    again = open_memory(tmp_path / "mem", clock, embedder=embedder)  # persisted across a restart
    assert again.count() == 5 and again.search("sibling's city", k=1)[0].record.id == target
    again.close()


def test_chat_recall_across_conversations_through_the_real_services(tmp_path: Path, clock: FixedClock) -> None:
    """build_services with memory on (real embedder, Chroma dir, FTS5) and FakeLLM recording prompts."""
    from fastapi.testclient import TestClient

    from assistant.app import create_app
    from assistant.config import load_settings
    from assistant.services import build_services
    from tests.fakes import FakeLLM

    settings = load_settings(None, data_dir=tmp_path / "data", memory={"enabled": True},
                             scheduler={"enabled": False})
    llm = FakeLLM("Noted.")
    services = build_services(settings, clock=clock, llm=llm)
    assert isinstance(services.chat.memory, MemoryRecall)
    with TestClient(create_app(services)) as c:
        first = c.post("/v1/chat/completions", json={"messages": [
            {"role": "user", "content": "I'm allergic to peanuts."}], "memory": True}).json()["conversation_id"]
        c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "The dog's vet is Dr. Moreau."}],
                                             "memory": True})  # fmt: skip
        body = c.post("/v1/chat/completions", json={"messages": [
            {"role": "user", "content": "Can you suggest a snack for me?"}]}).json()
    system, newest = llm.prompts[-1][0].content, llm.prompts[-1][-1].content
    assert "allergic to peanuts" not in system  # recall goes before the newest user message (issue 11)
    assert "allergic to peanuts" in newest.split("\n---\n")[0] and newest.endswith("Can you suggest a snack for me?")
    assert body["recalled"][0]["conversation_id"] == first
    assert body["recalled"][0]["text"] == "I'm allergic to peanuts."


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    exe = Path(sys.executable).with_name("chroma")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen([str(exe), "run", "--path", str(tmp_path / "chroma-server"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # polling a starting process
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "chroma.log").read_text())
            try:
                if httpx.get(url + "/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_chroma_server_through_http_client(
    tmp_path: Path, clock: FixedClock, embedder: SentenceTransformerEmbedder, chroma_server: str
) -> None:
    m = open_memory(tmp_path / "mem", clock, chroma_url=chroma_server, embedder=embedder)
    a = m.add("The spare key is under the blue flowerpot.", source="note")
    b = m.add("Bin day is Tuesday.", source="note")
    assert m.search("where is the spare key hidden", k=1)[0].record.id == a
    assert m.delete(b)
    assert m.vectors.memory_ids() == {a}
    m.close()
    # A vector left on the server that the local record does not know is cleaned up at open.
    m2 = open_memory(tmp_path / "mem2", clock, chroma_url=chroma_server, embedder=embedder)
    assert m2.vectors.memory_ids() == set()
    m2.close()


def _tiny_beir(folder: Path) -> None:
    docs = {
        "d1": ("Tomato care", "Tomatoes need full sun, deep watering and a stake to climb.", "alice"),
        "d2": ("Sourdough", "Feed the starter with flour and water every day before baking bread.", "alice"),
        "d3": ("Cycling", "Check tyre pressure and oil the chain before a long bike ride.", "bob"),
        "d4": ("Tomato soup", "Roast tomatoes with garlic, then blend with stock for soup.", "bob"),
        "d5": ("Sleep", "A dark, cool bedroom and a fixed bedtime improve sleep quality.", "alice"),
    }
    queries = {
        "q1": ("how do I grow tomatoes", "alice", {"d1": 1}),
        "q2": ("making bread at home", "alice", {"d2": 1}),
        "q3": ("bicycle maintenance", "bob", {"d3": 1}),
        "q4": ("tomato recipe", "bob", {"d4": 1}),
        "q5": ("tips to fall asleep", "alice", {"d5": 1}),
    }
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": k, "title": t, "text": x, "metadata": {"user": u}}) + "\n" for k, (t, x, u) in docs.items()))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": k, "text": t, "metadata": {"user": u}}) + "\n" for k, (t, u, _) in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, (_, _, rel) in queries.items() for d, s in rel.items()))


def test_eval_retrieval_command_on_a_tiny_beir_folder(tmp_path: Path) -> None:
    _tiny_beir(tmp_path / "beir")
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-m", "assistant", "eval", "retrieval", str(tmp_path / "beir"),
                          "--group-by", "user", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["queries"] == 5 and out["group_by"] == "user"
    assert set(out["metrics"]) == {"dense", "keyword", "hybrid"}
    assert out["metrics"]["hybrid"]["ndcg@10"] > 0.9
    assert out["metrics"]["hybrid"]["recall@5"] == 1.0
    table = subprocess.run([sys.executable, "-m", "assistant", "eval", "retrieval", str(tmp_path / "beir"),
                            "--split", "dev"], capture_output=True, text=True, env=env, timeout=300)
    assert table.returncode == 2 and "splits here: test" in table.stderr


def test_embedder_is_safe_to_share_between_threads(embedder: SentenceTransformerEmbedder) -> None:
    """Threads counting tokens (chunking long notes) while others embed: without the embedder's lock the
    shared fast tokenizer fails ("Already borrowed") or loses its truncation mid-batch, so a 2000-token text
    reaches the model ("size of tensor a (2003) must match ... (512)"); it did on every run here. With the
    lock: no error, and the vectors equal the ones embedded alone."""
    import threading

    long = "The quick brown fox jumps over the lazy dog. " * 200
    texts = [f"{long} {k}" for k in range(16)]
    alone = embedder.embed(texts[:4])
    errors: list[str] = []
    start = threading.Barrier(6)

    def count() -> None:
        start.wait()
        try:
            for _ in range(40):
                assert embedder.token_count(long) > 1000
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    def embed() -> None:
        start.wait()
        try:
            for _ in range(2):
                got = embedder.embed(texts)
                worst = max(abs(a - b) for x, y in zip(got[:4], alone, strict=True) for a, b in zip(x, y, strict=True))
                if worst > 1e-4:
                    errors.append(f"vectors differ by {worst}")
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    threads = [threading.Thread(target=count) for _ in range(4)] + [threading.Thread(target=embed) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
