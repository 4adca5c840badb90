from .partial_mtl import PartialMultiTaskDetector

__all__ = ['PartialMultiTaskDetector']
