"""`assistant chat` (interactive terminal client) and `assistant ask` (one shot, for scripts).

Both talk to the running daemon over its OpenAI-compatible HTTP API.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx

from assistant.cli.daemon_http import daemon_base_url, error_message
from assistant.config import Settings, load_settings
from assistant.core.openai_stream import delta_text, iter_chunks


@dataclass
class DaemonClient:
    url: str
    token: str | None = None
    conversation_id: str | None = None
    timeout: float = 600.0
    _headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if self.token:
            self._headers["Authorization"] = f"Bearer {self.token}"

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> DaemonClient:
        return cls(url or daemon_base_url(settings), settings.server.api_token)

    def stream(self, text: str, *, max_tokens: int | None = None) -> Iterator[str]:
        """Send one user message (continuing the conversation) and yield the answer's pieces."""
        body: dict[str, object] = {"messages": [{"role": "user", "content": text}], "stream": True}
        if self.conversation_id:
            body["conversation_id"] = self.conversation_id
        if max_tokens:
            body["max_tokens"] = max_tokens
        with httpx.stream(
            "POST", self.url + "/v1/chat/completions", json=body, headers=self._headers, timeout=self.timeout
        ) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise ClientError(error_message(resp))
            for chunk in iter_chunks(resp.iter_lines()):
                if "error" in chunk:
                    raise ClientError(chunk["error"].get("message", "error"))
                self.conversation_id = chunk.get("conversation_id", self.conversation_id)
                piece = delta_text(chunk)
                if piece:
                    yield piece

    def notifications(self, on_event: Callable[[dict], None], stop: threading.Event) -> None:
        """Follow /api/notifications/stream until ``stop`` is set (reconnects with Last-Event-ID)."""
        last_id: str | None = None
        while not stop.is_set():
            headers = dict(self._headers)
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with httpx.stream(
                    "GET", self.url + "/api/notifications/stream", headers=headers, timeout=None
                ) as resp:
                    if resp.status_code != 200:
                        return  # no notifications on this daemon
                    for line in resp.iter_lines():
                        if stop.is_set():
                            return
                        if line.startswith("id:"):
                            last_id = line[3:].strip()
                        elif line.startswith("data:"):
                            try:
                                on_event(json.loads(line[5:].strip()))
                            except ValueError:
                                continue
            except httpx.HTTPError:
                if stop.wait(2.0):
                    return


class ClientError(Exception):
    pass


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask one question and print the answer (for scripts)")
    p.add_argument("question", nargs="+")
    p.add_argument("--url", help="daemon URL (default from server.host/port)")
    p.add_argument("--conversation", help="continue this conversation id")
    p.add_argument("--max-tokens", type=int)
    p.set_defaults(func=run_ask)

    c = sub.add_parser("chat", help="chat with the daemon in the terminal")
    c.add_argument("--url", help="daemon URL (default from server.host/port)")
    c.add_argument("--conversation", help="continue this conversation id")
    c.add_argument("--no-notifications", action="store_true", help="don't show notifications")
    c.set_defaults(func=run_chat)


def _quiet_http_logs() -> None:
    """No per-request log lines in a client's output."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _client(args: argparse.Namespace) -> DaemonClient:
    settings = load_settings(args.config)
    client = DaemonClient.from_settings(settings, args.url)
    client.conversation_id = args.conversation
    return client


def run_ask(args: argparse.Namespace) -> int:
    _quiet_http_logs()
    client = _client(args)
    try:
        for piece in client.stream(" ".join(args.question), max_tokens=args.max_tokens):
            sys.stdout.write(piece)
            sys.stdout.flush()
    except httpx.ConnectError:
        print(
            f"assistant: the daemon is not running at {client.url} (start it with `assistant serve`)",
            file=sys.stderr,
        )
        return 3
    except (ClientError, httpx.HTTPError) as exc:
        print(f"\nassistant: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write("\n")
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.patch_stdout import patch_stdout
    from rich.console import Console
    from rich.markup import escape

    _quiet_http_logs()
    settings = load_settings(args.config)
    client = DaemonClient.from_settings(settings, args.url)
    client.conversation_id = args.conversation
    console = Console(highlight=False)
    try:
        httpx.get(client.url + "/healthz", timeout=5).raise_for_status()
    except httpx.HTTPError:
        console.print(f"[red]The daemon is not running at {client.url}[/] (start it with `assistant serve`).")
        return 3
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(history=FileHistory(str(settings.data_dir / "chat_history")))
    console.print("[dim]Chatting with the assistant. /new starts a new conversation, /quit leaves.[/]")

    stop = threading.Event()

    def show(note: dict) -> None:
        title = note.get("title", "notification")
        console.print(f"\n[bold magenta]🔔 {escape(str(title))}[/]\n{escape(str(note.get('body', '')))}")

    if not args.no_notifications:
        threading.Thread(target=client.notifications, args=(show, stop), daemon=True).start()
    try:
        with patch_stdout(raw=True):
            while True:
                try:
                    text = session.prompt("you> ").strip()
                except EOFError:
                    break
                if not text:
                    continue
                if text in ("/quit", "/exit"):
                    break
                if text == "/new":
                    client.conversation_id = None
                    console.print("[dim]new conversation[/]")
                    continue
                console.print("[bold cyan]assistant>[/] ", end="")
                try:
                    for piece in client.stream(text):
                        console.print(piece, end="", markup=False)
                except (ClientError, httpx.HTTPError) as exc:
                    console.print(f"\n[red]error:[/] {exc}", markup=True)
                console.print()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
    if client.conversation_id:
        console.print(f"[dim]conversation id: {client.conversation_id}[/]")
    return 0
