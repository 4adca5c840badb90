"""The wheel and the sdist: version from bombo/version.py, ranges in
Requires-Dist, the configs inside (``bombo/.mim/configs``), no ``build/``
left in the tree; the installed wheel (not the editable checkout) resolves
``bombo::`` bases from its own copy."""
import glob
import os
import os.path as osp
import subprocess
import sys
import tarfile
import zipfile

import pytest

import bombo
from conftest import ROOT

PY = sys.executable
CONFIGS = sorted(osp.relpath(p, osp.join(ROOT, 'configs')) for p in
                 glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                           recursive=True))
CHECK_INSTALLED = """
import os.path as osp, sys
import bombo
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.utils import get_installed_path  # mmengine's own lookup
site = sys.argv[1]
assert bombo.__file__.startswith(site), bombo.__file__
assert get_installed_path('bombo') == osp.join(site, 'bombo')
cfg = Config.fromfile(sys.argv[2])
assert osp.join(site, 'bombo/.mim/configs/toy/toy_r18_fpn_mtl.py') in cfg.text
print(type(MODELS.build(cfg.model)).__name__, bombo.__version__)
"""


def _run(cmd, cwd, **env):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope='module')
def no_build_dirs():
    """The builds must not leave build/ or dist/ in the tree."""
    before = {d: osp.exists(osp.join(ROOT, d)) for d in ('build', 'dist')}
    yield
    for d, existed in before.items():
        assert existed or not osp.exists(osp.join(ROOT, d)), d


def _mim_configs(names, prefix):
    return sorted(n[len(prefix):] for n in names
                  if n.startswith(prefix) and n.endswith('.py'))


def test_wheel_carries_configs_and_resolves_bombo_bases(tmp_path,
                                                        no_build_dirs):
    dist = tmp_path / 'dist'
    _run([PY, '-m', 'pip', 'wheel', ROOT, '--no-deps',
          '--no-build-isolation', '-q', '-w', str(dist)], cwd=tmp_path)
    wheel, = glob.glob(str(dist / '*.whl'))
    assert osp.basename(wheel).startswith(f'bombo-{bombo.__version__}-')
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(f'bombo-{bombo.__version__}.dist-info/METADATA'
                      ).decode()
    assert _mim_configs(names, 'bombo/.mim/configs/') == CONFIGS
    assert 'bombo/.mim/model-index.yml' in names
    assert any(n.endswith('dist-info/licenses/LICENSE') for n in names)
    for requirement in ('mmdet<3.4,>=3.3.0', 'mmengine<1.0,>=0.10.4',
                        'mmcv<2.2.0,>=2.0.0', 'tidecv>=1.0.1'):
        assert f'Requires-Dist: {requirement}' in meta, requirement

    # installed (not editable), a config of one's own elsewhere
    site = str(tmp_path / 'site')
    _run([PY, '-m', 'pip', 'install', '-q', '--no-deps', '--target', site,
          wheel], cwd=tmp_path)
    user = tmp_path / 'my_config.py'
    user.write_text("_base_ = 'bombo::toy/toy_r18_fpn_mtl.py'\n")
    out = _run([PY, '-c', CHECK_INSTALLED, site, str(user)], cwd=tmp_path,
               PYTHONPATH=site)
    assert f'PartialMultiTaskDetector {bombo.__version__}' in out


def test_sdist_carries_configs_and_builds_a_wheel(tmp_path, no_build_dirs):
    _run([PY, 'setup.py', '-q', 'egg_info', '--egg-base', str(tmp_path),
          'sdist', '-d', str(tmp_path)], cwd=ROOT)
    sdist, = glob.glob(str(tmp_path / '*.tar.gz'))
    top = f'bombo-{bombo.__version__}/'
    with tarfile.open(sdist) as t:
        names = t.getnames()
    assert _mim_configs(names, top + 'bombo/.mim/configs/') == CONFIGS
    assert top + 'LICENSE' in names and top + 'setup.py' in names
    _run([PY, '-m', 'pip', 'wheel', sdist, '--no-deps',
          '--no-build-isolation', '-q', '-w', str(tmp_path / 'dist')],
         cwd=tmp_path)
    wheel, = glob.glob(str(tmp_path / 'dist' / '*.whl'))
    with zipfile.ZipFile(wheel) as z:
        assert _mim_configs(z.namelist(), 'bombo/.mim/configs/') == CONFIGS
