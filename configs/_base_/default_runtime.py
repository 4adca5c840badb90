# Runtime shared by every bombo config (iteration-based: the multi-source
# sampler that pairs a detection and a segmentation batch is infinite).
default_scope = 'mmdet'
custom_imports = dict(imports=['bombo'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook that writes to a temporary file and renames it, and
    # deletes old checkpoints only after (bombo/engine/atomic_checkpoint.py)
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=2000,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
# makes checkpoints loadable with torch.load(weights_only=True) (torch >= 2.6)
custom_hooks = [dict(type='SafeCheckpointHook', priority='VERY_LOW')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
# DetLocalVisualizer that knows label 0 = background, k + 1 = class k
visualizer = dict(type='PartialDetLocalVisualizer', vis_backends=vis_backends,
                  name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
