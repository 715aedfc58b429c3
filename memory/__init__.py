"""Long-term memory: Chroma vectors + SQLite FTS5 keywords, fused into one hybrid search.

Nothing heavy is imported here; ``memory.service.build_memory`` builds the parts.
"""
