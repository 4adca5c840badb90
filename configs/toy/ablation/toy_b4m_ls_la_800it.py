# Ablation on the DEFAULT toy preset (data/toy), row "B4M L_S + L_alpha", no
# L_object (BoMBo Table 4). Inherits the 800-iteration schedule from
# toy_b4m_full_800it.py.
_base_ = './toy_b4m_full_800it.py'
model = dict(b4m=dict(use_object=False))
