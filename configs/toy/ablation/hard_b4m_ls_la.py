# Ablation on the hard toy preset (see hard_mtl.py), row "B4M L_S + L_alpha,
# no L_object (BoMBo Table 4)". Inherits the hard preset from
# hard_b4m_full.py.
_base_ = './hard_b4m_full.py'
model = dict(b4m=dict(use_object=False))
