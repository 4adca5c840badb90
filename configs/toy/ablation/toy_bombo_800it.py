# Ablation on the DEFAULT toy preset (data/toy, the demo's data), row
# "BoMBo (M4B L + B4M L_S + L_alpha + L_object, lambda = 2)", with the
# 800-iteration schedule of _base_/schedule_800it.py. Needs the pseudo-mask
# cache first; the command of the whole table is in toy_mtl_800it.py.
_base_ = ['../toy_r18_fpn_bombo.py', './_base_/schedule_800it.py']
max_iters = _base_.abl_max_iters
train_cfg = _base_.abl_train_cfg
param_scheduler = _base_.abl_param_scheduler
default_hooks = _base_.abl_default_hooks
