# Ablation on the hard toy preset (see hard_mtl.py), row "B4M L_S only:
# GrabCut pseudo-masks, no attention branch, no L_object (BoMBo Table 4)".
# Inherits the hard preset from hard_b4m_full.py.
_base_ = './hard_b4m_full.py'
model = dict(seg_head=dict(with_attention=False),
             b4m=dict(use_attention=False, use_object=False))
