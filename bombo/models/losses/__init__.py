from .b4m_losses import AttentionMSELoss, ObjectTripletLoss

__all__ = ['AttentionMSELoss', 'ObjectTripletLoss']
