"""Passages: chunking, embeddings, the vector store, indexing and search.

The front door: ``promptctl`` (and anything outside the service) imports these names from
here, never from the modules inside (tests/architecture/test_layers.py).
"""

from service.retrieval.chunking import read_documents
from service.retrieval.embeddings import Embedder, OnnxMiniLMEmbedder, build_embedder
from service.retrieval.indexing import IndexReport, index_documents
from service.retrieval.vectorstore import open_qdrant

__all__ = [
    "Embedder",
    "IndexReport",
    "OnnxMiniLMEmbedder",
    "build_embedder",
    "index_documents",
    "open_qdrant",
    "read_documents",
]
