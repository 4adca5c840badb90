from .local_visualizer import (PartialDetLocalVisualizer, class_palette,
                               to_class_map)

__all__ = ['PartialDetLocalVisualizer', 'class_palette', 'to_class_map']
