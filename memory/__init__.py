"""Long-term memory: Chroma + sentence-transformers with hybrid BM25 reranking."""
