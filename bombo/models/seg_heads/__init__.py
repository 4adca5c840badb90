from .semantic_fpn_head import SemanticFPNHead

__all__ = ['SemanticFPNHead']
