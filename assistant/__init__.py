"""A personal LLM assistant daemon for small devices."""
