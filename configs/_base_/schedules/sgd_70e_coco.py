# The paper's schedule on COCO: 70 epochs of the 14,656 segmentation images at
# 32 images per task batch (one iteration = one batch of each task).
_base_ = './sgd_70e.py'
max_iters = 32060
train_cfg = dict(max_iters=max_iters, val_interval=4580)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.7), int(max_iters * 0.9)], gamma=0.1)
]
