# The hard toy preset of the ablation (tools/make_toy_dataset.py --preset
# hard, data/toy_hard/: six textured classes, 96-160 px non-square images),
# 4 detection + 4 segmentation images per iteration, 600 iterations. A row
# family (hard_mtl, hard_m4b_l, hard_b4m_full, hard_bombo) lists this file
# after its configs/toy/ parent in ``_base_`` and assigns the ``hard_*``
# values to the real keys (mmengine refuses a key defined by two bases, hence
# the prefixed names); bombo's load_config gives ``data_root`` and
# ``metainfo`` to every dataset, evaluator and head of the config.
hard_per_task_batch = 4
hard_max_iters = 600
hard_data_root = 'data/toy_hard/'
hard_metainfo = dict(
    classes=('rectangle', 'ellipse', 'triangle', 'cross', 'star', 'hexagon'),
    palette=[(220, 20, 60), (0, 130, 200), (60, 180, 75), (245, 130, 48),
             (145, 30, 180), (70, 240, 240)])
hard_train_dataloader = dict(
    batch_size=2 * hard_per_task_batch,
    sampler=dict(batch_size=2 * hard_per_task_batch))
hard_train_cfg = dict(max_iters=hard_max_iters, val_interval=hard_max_iters)
hard_param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=hard_max_iters,
         milestones=[int(hard_max_iters * 0.75), int(hard_max_iters * 0.9)],
         gamma=0.1)
]
hard_default_hooks = dict(
    checkpoint=dict(interval=hard_max_iters),
    logger=dict(interval=50))
