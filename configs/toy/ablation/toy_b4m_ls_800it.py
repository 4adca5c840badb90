# Ablation on the DEFAULT toy preset (data/toy), row "B4M L_S only": GrabCut
# pseudo-masks, no attention branch, no L_object (BoMBo Table 4). Inherits the
# 800-iteration schedule from toy_b4m_full_800it.py.
_base_ = './toy_b4m_full_800it.py'
model = dict(seg_head=dict(with_attention=False),
             b4m=dict(use_attention=False, use_object=False))
