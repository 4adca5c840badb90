# Ablation on the DEFAULT toy preset (data/toy), row "B4M L_S + L_alpha +
# L_object" (BoMBo Table 4, last row), lambda = 1. The 800-iteration schedule is
# _base_/schedule_800it.py; the command of the whole table is in
# toy_mtl_800it.py. Needs the pseudo-mask cache
# (shared with the BoMBo config):
#   python tools/make_pseudo_masks.py configs/toy/toy_r18_fpn_b4m.py --workers 2
_base_ = ['../toy_r18_fpn_b4m.py', './_base_/schedule_800it.py']
max_iters = _base_.abl_max_iters
train_cfg = _base_.abl_train_cfg
param_scheduler = _base_.abl_param_scheduler
default_hooks = _base_.abl_default_hooks
