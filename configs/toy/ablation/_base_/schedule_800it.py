# The 800-iteration schedule of the default-preset ablation (toy_*_800it.py):
# the demo's schedule (1,600 iterations of 8 + 8) halved so that 3 seeds of
# every row fit on a 2-core CPU. A row config lists this file after its model
# config in ``_base_`` and assigns the four ``abl_*`` values to the real keys
# (mmengine refuses a key defined by two bases, hence the prefixed names).
abl_max_iters = 800
abl_train_cfg = dict(max_iters=abl_max_iters, val_interval=abl_max_iters)
abl_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=abl_max_iters,
         milestones=[int(abl_max_iters * 0.75), int(abl_max_iters * 0.9)],
         gamma=0.1)
]
abl_default_hooks = dict(checkpoint=dict(interval=abl_max_iters))
