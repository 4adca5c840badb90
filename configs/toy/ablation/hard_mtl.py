# Ablation on the hard toy preset (tools/make_toy_dataset.py --preset hard,
# data/toy_hard/: six textured classes, 96-160 px non-square images), row
# "baseline": the multi-task partially supervised baseline (no M4B / B4M).
# The four row families (hard_mtl, hard_m4b_l, hard_b4m_full, hard_bombo)
# take the preset from _base_/hard_preset.py on top of their configs/toy/
# parent; the other rows inherit one of them.
#   python tools/analysis_tools/ablation.py configs/toy/ablation/*.py \
#       --seeds 0 1 2 --work-dir work_dirs/ablation --jobs 2
_base_ = ['../toy_r18_fpn_mtl.py', './_base_/hard_preset.py']
per_task_batch = _base_.hard_per_task_batch
max_iters = _base_.hard_max_iters
data_root = _base_.hard_data_root
metainfo = _base_.hard_metainfo
train_dataloader = _base_.hard_train_dataloader
train_cfg = _base_.hard_train_cfg
param_scheduler = _base_.hard_param_scheduler
default_hooks = _base_.hard_default_hooks
