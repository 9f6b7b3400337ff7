"""Passages: chunking, embeddings, the vector store, indexing and search."""
