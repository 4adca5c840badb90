"""Distributed training on the CPU: 2 processes, gloo, through
tools/dist_train.sh (torchrun + mmengine DDP)."""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

from conftest import ROOT, tiny_cfg


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_cpu_training_stays_in_sync(toy_root, tmp_path):
    work_dir = str(tmp_path / 'dist')
    cfg = tiny_cfg(toy_root, work_dir, max_iters=4)
    cfg.train_cfg.val_interval = 100
    # as if lr and schedule were set for 1×(2 det + 2 seg) = 4 images per
    # step: 2 processes draw 2×(2+2) = 8, twice the base
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=4)
    cfg.custom_imports = dict(imports=['bombo', 'dist_probe'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [dict(type='SafeCheckpointHook', priority='VERY_LOW'),
                        dict(type='DistProbeHook')]
    cfg_file = str(tmp_path / 'dist_cfg.py')
    cfg.dump(cfg_file)
    env = dict(os.environ, PORT=str(free_port()), PYTHON=sys.executable,
               OMP_NUM_THREADS='1',
               PYTHONPATH=osp.join(ROOT, 'tests') + os.pathsep + ROOT)
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools/dist_train.sh'), cfg_file, '2',
         '--work-dir', work_dir, '--auto-scale-lr', '--scale-schedule'],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probes = [json.load(open(osp.join(work_dir, f'probe_rank{r}.json')))
              for r in (0, 1)]
    assert [p['world_size'] for p in probes] == [2, 2]
    assert all(p['wrapped'] == 'MMDistributedDataParallel' for p in probes)
    # DDP keeps the replicas identical after every step
    assert abs(probes[0]['checksum'] - probes[1]['checksum']) < 1e-6 * max(
        1.0, abs(probes[0]['checksum']))
    # the sampler shards: each rank gets its own images at every iteration,
    # half from the detection split and half from the segmentation split
    det_ids = set(open(osp.join(toy_root, 'ImageSets/Main/det_train.txt')).read().split())
    assert probes[0]['seen'] != probes[1]['seen']
    for p in probes:
        for paths in p['seen']:
            ids = [osp.splitext(osp.basename(x))[0] for x in paths]
            assert len(ids) == 4 and sum(i in det_ids for i in ids) == 2
    # --scale-schedule: 4 iterations of 4 images = 2 of 2×4; checkpoint
    # interval 2 -> 1; --auto-scale-lr: AdamW 1e-3 × 8 / 4
    assert [len(p['seen']) for p in probes] == [2, 2]
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert not osp.exists(osp.join(work_dir, 'iter_3.pth'))
    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert ('batch layout 2×(2 det + 2 seg) = 8 images per step (lr base '
            '4); lr 0.002 (linear scaling, --auto-scale-lr); budget 2 '
            'iterations = 1.0 epochs of det (8 images)') in log
