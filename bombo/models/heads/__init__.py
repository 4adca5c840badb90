from .matl_embedding_head import MATLEmbeddingHead

__all__ = ['MATLEmbeddingHead']
