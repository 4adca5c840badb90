from .semseg_metric import SemanticIoUMetric

__all__ = ['SemanticIoUMetric']
