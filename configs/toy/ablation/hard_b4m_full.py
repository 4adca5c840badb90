# Ablation on the hard toy preset (see hard_mtl.py), row "B4M L_S + L_alpha
# + L_object" (BoMBo Table 4, last row). Needs the pseudo-mask cache first:
#   python tools/make_pseudo_masks.py configs/toy/ablation/hard_b4m_full.py --workers 2
_base_ = ['../toy_r18_fpn_b4m.py', './_base_/hard_preset.py']
per_task_batch = _base_.hard_per_task_batch
max_iters = _base_.hard_max_iters
data_root = _base_.hard_data_root
metainfo = _base_.hard_metainfo
train_dataloader = _base_.hard_train_dataloader
train_cfg = _base_.hard_train_cfg
param_scheduler = _base_.hard_param_scheduler
default_hooks = _base_.hard_default_hooks

