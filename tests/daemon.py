"""The daemon-as-a-subprocess helpers live in assistant.daemon_process (benchmarks use them too)."""

from assistant.daemon_process import Daemon, free_port, start_daemon, wait_healthy

__all__ = ["Daemon", "free_port", "start_daemon", "wait_healthy"]
