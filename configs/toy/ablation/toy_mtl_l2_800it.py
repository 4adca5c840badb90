# Ablation on the DEFAULT toy preset (data/toy), row "baseline, lambda = 2":
# the multi-task baseline with the segmentation loss weighted as in BoMBo
# (Eq. 1, lambda = 2; BoMBo Sec. 4.4), so that BoMBo's row can be read
# against a baseline with the same lambda (docs/evidence.md §4). Inherits the
# 800-iteration schedule from toy_mtl_800it.py.
_base_ = './toy_mtl_800it.py'
model = dict(seg_weight=2.0)
