"""`assistant chat` (interactive terminal client) and `assistant ask` (one shot, for scripts).

Both talk to the running daemon over its OpenAI-compatible HTTP API.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import TYPE_CHECKING

from assistant.config import load_settings

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from assistant.client.daemon import DaemonClient

NOTIFICATION_RETRY = 2.0  # seconds between reconnects of the notification stream


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="ask one question and print the answer (for scripts)")
    p.add_argument("question", nargs="+")
    p.add_argument("--url", help="daemon URL (default from server.host/port)")
    p.add_argument("--conversation", help="continue this conversation id")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--persona", help="the persona answering (see GET /api/personas; default: the daemon's)")
    p.set_defaults(func=run_ask)

    c = sub.add_parser("chat", help="chat with the daemon in the terminal")
    c.add_argument("--url", help="daemon URL (default from server.host/port)")
    c.add_argument("--conversation", help="continue this conversation id")
    c.add_argument("--no-notifications", action="store_true", help="don't show notifications")
    c.add_argument("--persona", help="the persona answering (/persona NAME changes it in the chat)")
    c.set_defaults(func=run_chat)


def _quiet_http_logs() -> None:
    """No notification-stream reconnect lines in a client's output (unless ``--verbose``: the root logger is
    at DEBUG then). The per-request httpx lines are quieted for every command in ``assistant.cli.main``."""
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("assistant.client").setLevel(logging.ERROR)


def run_ask(args: argparse.Namespace) -> int:
    from assistant.client.daemon import DaemonClient, DaemonError, DaemonUnreachable

    _quiet_http_logs()
    with DaemonClient.from_settings(load_settings(args.config), url=args.url) as client:
        client.conversation_id = args.conversation
        client.persona = args.persona
        try:
            for piece in client.stream(" ".join(args.question), max_tokens=args.max_tokens):
                sys.stdout.write(piece)
                sys.stdout.flush()
        except DaemonUnreachable as exc:
            print(f"assistant: {exc.message}", file=sys.stderr)
            return 3
        except DaemonError as exc:
            print(f"\nassistant: {exc.message}", file=sys.stderr)
            return 1
    sys.stdout.write("\n")
    return 0


def run_chat(args: argparse.Namespace) -> int:
    from rich.console import Console

    from assistant.client.daemon import DaemonClient

    _quiet_http_logs()
    settings = load_settings(args.config)
    console = Console(highlight=False)
    with DaemonClient.from_settings(settings, url=args.url) as client:
        client.conversation_id = args.conversation
        client.persona = args.persona
        if not client.healthy():
            console.print(
                f"[red]The daemon is not running at {client.url}[/] (start it with `assistant serve`)."
            )
            return 3
        history = chat_history_file(settings.data_dir)
        console.print(
            "[dim]Chatting with the assistant. /new starts a new conversation, /good or /bad rates the last "
            "answer, /persona NAME changes the tone, /quit leaves.[/]"
        )
        stop, screen = threading.Event(), threading.Lock()
        if not args.no_notifications:
            notes = threading.Thread(
                target=_show_notifications, args=(client, console, stop, screen), daemon=True
            )
            notes.start()
        try:
            _converse(client, console, history, screen)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
        if client.conversation_id:
            console.print(f"[dim]conversation id: {client.conversation_id}[/]")
    return 0


def _show_notifications(
    client: DaemonClient, console: Console, stop: threading.Event, screen: threading.Lock
) -> None:
    from rich.markup import escape

    for note in client.notifications(stop, retry=NOTIFICATION_RETRY):
        title = note.title or "notification"
        with screen:  # never in the middle of a streamed answer
            console.print(f"\n[bold magenta]🔔 {escape(title)}[/]\n{escape(note.body)}")


def chat_history_file(data_dir: Path) -> Path:
    """The chat's input history, created private (0600) in a private (0700) data dir: it holds what the
    user typed."""
    from assistant.core.sqlite_db import private_file

    return private_file(data_dir / "chat_history")


def _converse(client: DaemonClient, console: Console, history: Path, screen: threading.Lock) -> None:
    """Prompt, send, print the streamed answer; until /quit or end of input.

    Only the prompt runs under ``patch_stdout`` (so that a notification prints above the line being
    typed). The answer is printed straight to the terminal, holding ``screen``: the proxy's writer thread
    could otherwise still be writing the answer while the next prompt draws itself, and the prompt's
    redraw erased it (seen as an empty answer line).
    """
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.patch_stdout import patch_stdout
    from rich.markup import escape

    session: PromptSession[str] = PromptSession(history=FileHistory(str(history)))
    while True:
        with patch_stdout(raw=True):  # leaving it waits until everything written through it is out
            try:
                text = session.prompt("you> ").strip()
            except EOFError:
                return
            screen.acquire()  # before the proxy closes: a notification now waits for the real terminal
        try:
            if not text:
                continue
            if text in ("/quit", "/exit"):
                return
            if text == "/new":
                client.new_conversation()
                console.print("[dim]new conversation[/]")
                continue
            if text in ("/good", "/bad"):
                console.print(f"[dim]{escape(rate_answer(client, text == '/good'))}[/]")
                continue
            if text.startswith("/persona "):
                remember_persona(client, text)
            console.print("[bold cyan]assistant>[/] ", end="")
            if not stream_answer(client, console, text):
                console.print("\n[dim](stopped; Ctrl-C again or Ctrl-D quits)[/]", end="")
            console.print()
        finally:
            screen.release()


def stream_answer(client: DaemonClient, console: Console, text: str) -> bool:
    """Print one streamed answer; False when Ctrl-C stopped it.

    Ctrl-C closes the stream (the generator's ``with`` closes the response): the daemon sees the client
    go and cancels the generation, which frees its worker for the next question.
    """
    from rich.markup import escape

    from assistant.client.daemon import DaemonError

    pieces = client.stream(text)
    try:
        for piece in pieces:
            console.print(piece, end="", markup=False)
    except KeyboardInterrupt:
        close = getattr(pieces, "close", None)  # a generator: its close() leaves the response's `with`
        if close is not None:
            close()
        return False
    except DaemonError as exc:
        console.print(f"\n[red]error:[/] {escape(exc.message)}")
    return True


def rate_answer(client: DaemonClient, good: bool) -> str:
    """``/good`` or ``/bad``: rate the newest answer; what memory learned, in one line."""
    from assistant.client.daemon import DaemonError

    try:
        got = client.rate(good)
    except DaemonError as exc:
        return f"not rated: {exc.message}"
    shown = got.get("memories", [])
    n = sum(1 for m in shown if m.get("effect") != "not used")
    unused = len(shown) - n
    word = "good" if good else "bad"
    if not n:
        why = (f"the answer used none of the {unused} recalled memor{'y' if unused == 1 else 'ies'}" if unused
               else "no memories were recalled into that answer")  # fmt: skip
        return f"rated {word} ({why}, so no memory moves)"
    effect = "preferred" if good else "demoted"
    return (
        f"rated {word}: {n} memor{'y' if n == 1 else 'ies'} the answer used will be {effect} for "
        f"similar questions (undo: assistant memory feedback --undo {got.get('id')})"
    )


def remember_persona(client: DaemonClient, text: str) -> None:
    """``/persona NAME`` goes to the daemon (which answers it); a known name is also kept by the client, so
    that a /new conversation keeps the tone."""
    from assistant.client.daemon import DaemonError

    name = text.split(maxsplit=1)[1].strip()
    try:
        known = {p.get("name") for p in client.personas()}
    except DaemonError:
        return
    if name in known:
        client.persona = name
