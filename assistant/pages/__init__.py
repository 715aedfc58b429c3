"""Web pages: fetch one under the feeds' address policy, extract its main text, summarize it with the
model in parts when it does not fit the context (``/summarize URL``, ``/eli5 URL``). See docs/pages.md."""
