"""The one client of the daemon's HTTP API (:mod:`assistant.client.daemon`), shared by the CLI commands,
`assistant chat` and the voice front end. Its streams are read with :mod:`assistant.core.openai_stream`.
Nothing is imported here, so importing the package stays cheap.
"""
