from .embedding_single_stage import EmbeddingSingleStageDetector
from .partial_mtl import PartialMultiTaskDetector

__all__ = ['EmbeddingSingleStageDetector', 'PartialMultiTaskDetector']
