"""Long-term memory: Chroma vectors + SQLite FTS5 keywords, fused into one hybrid search.

Nothing heavy is imported here; ``memory.opening.build_memory`` builds the parts.
"""
