"""Hybrid retrieval: BM25 over analyzed terms and cosine over embeddings, fused by rank."""
