"""A hook for the distributed test: each rank records what it trained on and
a checksum of its parameters (imported through ``custom_imports``)."""
import json
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook


@HOOKS.register_module()
class DistProbeHook(Hook):
    def __init__(self):
        self.seen = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.seen.append([s.img_path for s in data_batch['data_samples']])

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') \
            else runner.model
        checksum = float(sum(p.detach().double().sum()
                             for p in model.parameters()))
        out = dict(rank=get_rank(), world_size=get_world_size(),
                   seen=self.seen, checksum=checksum,
                   wrapped=type(runner.model).__name__)
        with open(osp.join(runner.work_dir, f'probe_rank{get_rank()}.json'),
                  'w') as f:
            json.dump(out, f)
