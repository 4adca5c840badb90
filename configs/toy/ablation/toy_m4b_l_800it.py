# Ablation on the DEFAULT toy preset (data/toy), row "M4B L": refined
# pseudo-boxes (Algorithm 1, post-NMS EMA-teacher input, the default),
# localisation loss only (BoMBo Table 1's best row). The 800-iteration schedule is
# _base_/schedule_800it.py; the command of the whole table is in
# toy_mtl_800it.py.
_base_ = ['../toy_r18_fpn_m4b.py', './_base_/schedule_800it.py']
max_iters = _base_.abl_max_iters
train_cfg = _base_.abl_train_cfg
param_scheduler = _base_.abl_param_scheduler
default_hooks = _base_.abl_default_hooks
