"""tools/dist_train.sh, dist_test.sh, slurm_train.sh, slurm_test.sh: syntax,
the exact command each builds (with a fake interpreter / a fake ``srun`` on
PATH that record their argv and environment), and a real 2-process CPU
evaluation through dist_test.sh."""
import glob
import json
import os
import os.path as osp
import socket
import stat
import subprocess
import sys

import pytest

from conftest import ROOT, TOY_CONFIG, tiny_overrides

TOOLS = osp.join(ROOT, 'tools')
SCRIPTS = sorted(glob.glob(osp.join(TOOLS, '*.sh')))

# records argv[1:] and a few variables as json, then exits 0
RECORDER = """#!{python}
import json, os, sys
with open({out!r}, 'a') as f:
    f.write(json.dumps(dict(
        argv=sys.argv[1:],
        env={{k: os.environ.get(k) for k in ('PYTHONPATH', 'GPUS')}})) + '\\n')
"""


def _recorder(path, out):
    with open(path, 'w') as f:
        f.write(RECORDER.format(python=sys.executable, out=str(out)))
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return str(path)


def _calls(out):
    with open(out) as f:
        return [json.loads(line) for line in f]


def test_every_script_parses():
    names = {osp.basename(s) for s in SCRIPTS}
    assert {'dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
            'slurm_test.sh'} <= names
    for script in SCRIPTS:
        proc = subprocess.run(['bash', '-n', script], capture_output=True,
                              text=True)
        assert proc.returncode == 0, (script, proc.stderr)
        assert os.access(script, os.X_OK), script


@pytest.mark.parametrize('script,nargs', [('dist_train.sh', 2),
                                          ('dist_test.sh', 3),
                                          ('slurm_train.sh', 4),
                                          ('slurm_test.sh', 4)])
def test_too_few_arguments_print_the_usage(script, nargs):
    proc = subprocess.run(['bash', osp.join(TOOLS, script)] +
                          ['x'] * (nargs - 1), capture_output=True, text=True)
    assert proc.returncode == 2 and 'usage:' in proc.stderr


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh'])
def test_dist_scripts_build_the_torchrun_command(script, tmp_path):
    out = tmp_path / 'calls.jsonl'
    fake_python = _recorder(tmp_path / 'python', out)
    env = dict(os.environ, PYTHON=fake_python, NNODES='2', NODE_RANK='1',
               MASTER_ADDR='10.0.0.1', PORT='12345', PYTHONPATH='/elsewhere')
    positional = ['cfg.py', '8'] if script == 'dist_train.sh' else \
        ['cfg.py', 'ck.pth', '8']
    proc = subprocess.run(['bash', osp.join(TOOLS, script)] + positional +
                          ['--cfg-options', 'a=1 b', '--auto-scale-lr'],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (call, ) = _calls(out)
    tool = 'train.py' if script == 'dist_train.sh' else 'test.py'
    assert call['argv'] == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1',
        '--master_addr=10.0.0.1', '--nproc_per_node=8',
        '--master_port=12345', osp.join(TOOLS, tool)] + positional[:-1] + [
        '--launcher', 'pytorch', '--cfg-options', 'a=1 b', '--auto-scale-lr']
    assert call['env']['PYTHONPATH'] == f'{TOOLS}/..:/elsewhere'
    # the defaults: one node, 127.0.0.1:29500
    out.unlink()
    env = dict(os.environ, PYTHON=fake_python)
    for k in ('NNODES', 'NODE_RANK', 'MASTER_ADDR', 'PORT'):
        env.pop(k, None)
    subprocess.run(['bash', osp.join(TOOLS, script)] + positional, env=env,
                   check=True, capture_output=True)
    (call, ) = _calls(out)
    assert call['argv'][2:7] == ['--nnodes=1', '--node_rank=0',
                                 '--master_addr=127.0.0.1',
                                 '--nproc_per_node=8', '--master_port=29500']


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_scripts_build_the_srun_command(script, tmp_path):
    out = tmp_path / 'calls.jsonl'
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    _recorder(bin_dir / 'srun', out)
    env = dict(os.environ, PATH=f'{bin_dir}{os.pathsep}{os.environ["PATH"]}',
               GPUS='16', GPUS_PER_NODE='4', CPUS_PER_TASK='3',
               SRUN_ARGS='--quotatype=auto --exclusive', PYTHONPATH='/x')
    env.pop('PYTHON', None)
    fourth = 'work_dirs/run' if script == 'slurm_train.sh' else 'ck.pth'
    proc = subprocess.run(
        ['bash', osp.join(TOOLS, script), 'gpu', 'job1', 'cfg.py', fourth,
         '--cfg-options', 'a=1 b'], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (call, ) = _calls(out)
    srun_opts = ['-p', 'gpu', '--job-name=job1', '--gres=gpu:4',
                 '--ntasks=16', '--ntasks-per-node=4', '--cpus-per-task=3',
                 '--kill-on-bad-exit=1', '--quotatype=auto', '--exclusive',
                 'python', '-u']
    if script == 'slurm_train.sh':
        tail = [osp.join(TOOLS, 'train.py'), 'cfg.py',
                '--work-dir=work_dirs/run', '--launcher=slurm']
    else:
        tail = [osp.join(TOOLS, 'test.py'), 'cfg.py', 'ck.pth',
                '--launcher=slurm']
    assert call['argv'] == srun_opts + tail + ['--cfg-options', 'a=1 b']
    assert call['env']['PYTHONPATH'] == f'{TOOLS}/..:/x'
    # mmdetection's defaults: 8 tasks, 8 per node, 5 cores each, no extras
    out.unlink()
    for k in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS'):
        env.pop(k)
    subprocess.run(['bash', osp.join(TOOLS, script), 'gpu', 'job1',
                    'cfg.py', fourth], env=env, check=True,
                   capture_output=True)
    (call, ) = _calls(out)
    assert call['argv'][3:9] == ['--gres=gpu:8', '--ntasks=8',
                                 '--ntasks-per-node=8', '--cpus-per-task=5',
                                 '--kill-on-bad-exit=1', 'python']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_test_two_cpu_processes_match_one(toy_root, tmp_path):
    """2 gloo processes evaluate a tiny toy checkpoint through
    dist_test.sh: each takes half the images, and the metrics equal those
    of one process."""
    import test as test_tool
    import train
    work_dir = str(tmp_path / 'train')
    opts = tiny_overrides(toy_root, work_dir, max_iters=1)
    opts.pop('param_scheduler')
    opts = [f'{k}={v}' for k, v in opts.items() if k != 'work_dir']
    train.main([TOY_CONFIG, '--work-dir', work_dir, '--cfg-options'] + opts)
    ckpt = osp.join(work_dir, 'iter_1.pth')
    opts.append('test_dataloader.batch_size=1')  # 4 images: 4 iterations
    one = test_tool.main([TOY_CONFIG, ckpt, '--work-dir',
                          str(tmp_path / 'one'), '--cfg-options'] + opts)
    env = dict(os.environ, PORT=str(_free_port()), PYTHON=sys.executable,
               OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', osp.join(TOOLS, 'dist_test.sh'), TOY_CONFIG, ckpt, '2',
         '--work-dir', str(tmp_path / 'two'), '--cfg-options'] + opts,
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = open(glob.glob(str(tmp_path / 'two' / '*' / '*.log'))[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'Iter(test) [2/2]' in log  # each rank: 2 of the 4 images
    for key in ('seg/mIoU', 'coco/bbox_mAP', 'pascal_voc/mAP'):
        assert f'{key}: {one[key]:.4f}' in log, key
