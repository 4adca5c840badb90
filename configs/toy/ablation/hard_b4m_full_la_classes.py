# Ablation on the hard toy preset (see hard_mtl.py), row "B4M full with
# L_alpha divided by the number of channels (the L_alpha scale measurement
# of docs/box_for_mask.md)". Inherits the hard preset from
# hard_b4m_full.py.
_base_ = './hard_b4m_full.py'
model = dict(b4m=dict(loss_attention=dict(type='AttentionMSELoss',
                                         normalize='classes')))
