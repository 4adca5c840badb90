# Ablation on the DEFAULT toy preset (data/toy, the demo's data), row
# "BoMBo (M4B L + B4M L_S + L_alpha + L_object, lambda = 2)": the demo's schedule shortened to 800 iterations
# of 8 + 8 images (half of the demo's 1,600) so that 3 seeds of baseline and
# BoMBo fit on a 2-core CPU. BoMBo needs the pseudo-mask cache first:
#   python tools/make_pseudo_masks.py configs/toy/toy_r18_fpn_bombo.py --workers 2
#   python tools/analysis_tools/ablation.py configs/toy/ablation/toy_mtl_800it.py \
#       configs/toy/ablation/toy_bombo_800it.py --seeds 0 1 2 --jobs 2 \
#       --work-dir work_dirs/ablation_toy_800it
_base_ = '../toy_r18_fpn_bombo.py'
max_iters = 800
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
