# Ablation on the DEFAULT toy preset (data/toy), row "M4B C": refined
# pseudo-boxes, classification loss only (BoMBo Table 1). Inherits the
# 800-iteration schedule from toy_m4b_l_800it.py.
_base_ = './toy_m4b_l_800it.py'
model = dict(m4b=dict(loss_mode='C'))
