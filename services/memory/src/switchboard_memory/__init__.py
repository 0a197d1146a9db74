"""The memory service: conversation history by session id, and RAG collections."""
