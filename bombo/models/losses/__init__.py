from .b4m_losses import AttentionMSELoss, ObjectTripletLoss
from .daal import DAALLoss, daal_loss
from .matl import MATLLoss, matl_loss
from .tg_matl import (TGMATLLoss, tg_matl_loss, tg_matl_relevance,
                      tg_matl_selection_mask)
from .triplet import (TripletMarginLoss, batch_all_triplet_loss,
                      batch_hard_triplet_loss, pairwise_distances,
                      triplet_loss)

__all__ = [
    'AttentionMSELoss', 'ObjectTripletLoss', 'DAALLoss', 'daal_loss',
    'MATLLoss', 'matl_loss', 'TGMATLLoss', 'tg_matl_loss',
    'tg_matl_relevance', 'tg_matl_selection_mask', 'TripletMarginLoss',
    'batch_all_triplet_loss', 'batch_hard_triplet_loss',
    'pairwise_distances', 'triplet_loss'
]
