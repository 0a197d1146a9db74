"""Retrieval quality of session memory and RAG: recall@k on a generated set (`generated`) and on
LoCoMo-10 from a local copy (`locomo`), through the service's own store and ranking."""
