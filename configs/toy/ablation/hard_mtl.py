# Ablation on the hard toy preset (tools/make_toy_dataset.py --preset hard,
# data/toy_hard/: six textured classes, 96-160 px non-square images), row
# "baseline": the multi-task partially supervised baseline (no M4B / B4M).
# The four row families (hard_mtl, hard_m4b_l, hard_b4m_full, hard_bombo)
# repeat the same "hard preset" block below on top of their configs/toy/
# parent (mmengine refuses duplicate keys across several _base_ files, so the
# block cannot be a second base); the other rows inherit one of them.
#   python tools/analysis_tools/ablation.py configs/toy/ablation/*.py \
#       --seeds 0 1 2 --work-dir work_dirs/ablation --jobs 2
_base_ = '../toy_r18_fpn_mtl.py'
# ---- hard preset block (identical in hard_mtl, hard_m4b_l, hard_b4m_full, hard_bombo) ----
data_root = 'data/toy_hard/'
metainfo = dict(
    classes=('rectangle', 'ellipse', 'triangle', 'cross', 'star', 'hexagon'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48),
             (145, 30, 180), (70, 240, 240)])
per_task_batch = 4
max_iters = 600
train_dataloader = dict(
    batch_size=2 * per_task_batch,
    sampler=dict(batch_size=2 * per_task_batch))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1)
]
default_hooks = dict(
    checkpoint=dict(interval=max_iters),
    logger=dict(interval=50))
# ---- end of the hard preset block ----
