# Ablation on the hard toy preset (see hard_mtl.py), row "M4B L+C: refined
# pseudo-boxes (dense teacher input), localisation + classification losses
# (BoMBo Table 1)". Inherits the hard preset from hard_m4b_l.py.
_base_ = './hard_m4b_l.py'
model = dict(m4b=dict(loss_mode='LC'))
