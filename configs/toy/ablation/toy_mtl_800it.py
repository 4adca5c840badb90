# Ablation on the DEFAULT toy preset (data/toy, the demo's data), row
# "baseline (the demo's config)", with the 800-iteration schedule of
# _base_/schedule_800it.py (half of the demo's 1,600 iterations of 8 + 8) so
# that 3 seeds of all eight rows fit on a 2-core CPU. The B4M and BoMBo rows
# need the pseudo-mask cache first; the whole table (docs/evidence.md §5):
#   python tools/make_pseudo_masks.py configs/toy/toy_r18_fpn_bombo.py --workers 2
#   C=configs/toy/ablation
#   python tools/analysis_tools/ablation.py $C/toy_mtl_800it.py \
#       $C/toy_m4b_l_800it.py $C/toy_m4b_c_800it.py $C/toy_m4b_lc_800it.py \
#       $C/toy_b4m_ls_800it.py $C/toy_b4m_ls_la_800it.py \
#       $C/toy_b4m_full_800it.py $C/toy_bombo_800it.py \
#       --seeds 0 1 2 --jobs 2 --work-dir work_dirs/ablation_toy_800it
_base_ = ['../toy_r18_fpn_mtl.py', './_base_/schedule_800it.py']
max_iters = _base_.abl_max_iters
train_cfg = _base_.abl_train_cfg
param_scheduler = _base_.abl_param_scheduler
default_hooks = _base_.abl_default_hooks
