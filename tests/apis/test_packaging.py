"""The wheel and the sdist, installed as a user would: each into a clean
virtual environment, then used from a folder outside the checkout.

* contents: version from bombo/version.py, ranges in Requires-Dist, the
  configs (``bombo/.mim/configs``) and the tools (``bombo/.mim/tools``)
  inside, the console scripts declared, no ``build/`` or ``dist/`` left in
  the tree;
* installed: ``python -m venv`` without pip and without bombo; the already
  installed dependencies (torch, mmcv, mmdet, ...) are made visible through a
  ``.pth`` line naming a folder of links to this environment's
  site-packages *minus* bombo's editable install (its finder, its ``.pth``
  and its dist-info), so that nothing is downloaded or compiled; then
  ``pip install --no-deps`` of the wheel, or of the sdist (pip builds it in
  that environment). From a temporary folder: ``import bombo`` resolves
  inside the new environment, a user's own config with
  ``_base_ = 'bombo::...'`` loads with mmengine's ``Config.fromfile`` from
  the installed copy and builds, the console scripts are there and answer
  ``--help`` (``bombo`` and ``bombo-train``: the others are the same code
  for another tool; the checkout's tools' ``--help``:
  tests/tools/test_cli_help.py).

About 60 s on 2 cores loaded by 10 jobs (25 s of CPU: one bombo import
per process, three at once). ``BOMBO_SKIP_PACKAGING=1`` skips it where pip
cannot build (it runs by default, in CI too).
"""
import glob
import os
import os.path as osp
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

import bombo
from conftest import ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get('BOMBO_SKIP_PACKAGING', '') not in ('', '0'),
    reason='BOMBO_SKIP_PACKAGING is set')

PY = sys.executable
VERSION = bombo.__version__


def _checkout_files():
    """The configs and the tools of the checkout (listed right before a
    build: they are what the build must carry)."""
    configs = sorted(osp.relpath(p, osp.join(ROOT, 'configs')) for p in
                     glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                               recursive=True))
    tools = sorted(
        osp.relpath(p, osp.join(ROOT, 'tools')) for p in
        glob.glob(osp.join(ROOT, 'tools', '**', '*.py'), recursive=True) +
        glob.glob(osp.join(ROOT, 'tools', '*.sh'))
        if '__pycache__' not in p)
    return configs, tools


CONSOLE_SCRIPTS = ('bombo', 'bombo-train', 'bombo-test', 'bombo-image-demo',
                   'bombo-dist-train')

# run with the new environment's python from a folder outside the checkout:
# argv = site-packages of the new environment, a user's config
CHECK_INSTALLED = """
import os.path as osp, sys
site, user_config = sys.argv[1:3]
sys.path = [p for p in sys.path if osp.abspath(p or '.') != osp.abspath('.')]
import bombo
from bombo.cli import available_tools, tools_dir
from mmengine.config import Config
from mmengine.registry import MODELS
from mmengine.utils import get_installed_path  # mmengine's own lookup
assert bombo.__file__.startswith(site), bombo.__file__
assert get_installed_path('bombo') == osp.join(site, 'bombo')
assert not osp.islink(tools_dir()), 'tools are a link, not installed files'
tools = available_tools()
for name in ('train', 'test', 'image_demo', 'make_splits', 'tide_analysis',
             'dist_train'):
    assert tools[name].startswith(site), (name, tools[name])
cfg = Config.fromfile(user_config)
assert osp.join(site, 'bombo/.mim/configs/toy/toy_r18_fpn_mtl.py') in cfg.text
voc = Config.fromfile(osp.join(osp.dirname(user_config), 'my_voc.py'))
assert osp.join(site, 'bombo/.mim/configs/bombo/bombo_r18_fpn_voc.py') in \\
    voc.text
assert voc.model.type == 'PartialMultiTaskDetector' and voc.train_cfg
print(type(MODELS.build(cfg.model)).__name__, bombo.__version__)
"""
USER_CONFIG = "_base_ = 'bombo::toy/toy_r18_fpn_mtl.py'\n"
USER_VOC_CONFIG = ("_base_ = 'bombo::bombo/bombo_r18_fpn_voc.py'\n"
                   "data_root = '/nowhere/voc/'\n")


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV',
                        'PYTHONSTARTUP')}
    env.update(PYTHONNOUSERSITE='1', PIP_DISABLE_PIP_VERSION_CHECK='1',
               PIP_NO_INDEX='1', PIP_ROOT_USER_ACTION='ignore',
               OMP_NUM_THREADS='1', MPLBACKEND='Agg', **extra)
    return env


def _run(cmd, cwd, timeout=300):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env=_env(), timeout=timeout)
    assert proc.returncode == 0, (cmd, proc.stdout[-3000:] +
                                  proc.stderr[-3000:])
    return proc.stdout


def _run_all(cmds, cwd, timeout=300):
    """Run the commands at once; ``{cmd[0] basename + args: stdout}``."""
    procs = [(cmd, subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True,
                                    env=_env())) for cmd in cmds]
    outs = {}
    for cmd, p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, (cmd, out[-2000:] + err[-2000:])
        outs[' '.join([osp.basename(cmd[0])] + cmd[1:])] = out
    return outs


@pytest.fixture(scope='module')
def no_build_dirs():
    """The builds must not leave build/ or dist/ in the tree."""
    before = {d: osp.exists(osp.join(ROOT, d)) for d in ('build', 'dist')}
    yield
    for d, existed in before.items():
        assert existed or not osp.exists(osp.join(ROOT, d)), d


@pytest.fixture(scope='module')
def deps_dir(tmp_path_factory):
    """A folder of links to every entry of this environment's site-packages
    except bombo's own (editable finder, .pth, dist-info, package)."""
    out = tmp_path_factory.mktemp('deps')
    sites = {sysconfig.get_paths()['purelib'],
             sysconfig.get_paths()['platlib']}
    for site in sorted(sites):
        for name in sorted(os.listdir(site)):
            low = name.lower()
            if (low == 'bombo' or low.startswith(('bombo-', 'bombo.',
                                                  '__editable__'))
                    or low.endswith('.pth') or '__editable__' in low
                    or (out / name).exists()):
                continue
            os.symlink(osp.join(site, name), out / name)
    return str(out)


def make_venv(path, deps_dir) -> tuple:
    """A virtual environment without pip and without bombo that sees the
    dependencies through a .pth line; returns ``(python, site-packages)``."""
    subprocess.run([PY, '-m', 'venv', '--without-pip', '--clear', str(path)],
                   check=True, env=_env(), timeout=120)
    python = str(path / 'bin' / 'python')
    site = subprocess.run(
        [python, '-c', 'import sysconfig; '
         'print(sysconfig.get_paths()["purelib"])'], check=True,
        capture_output=True, text=True, env=_env()).stdout.strip()
    with open(osp.join(site, '_bombo_test_deps.pth'), 'w') as f:
        f.write(deps_dir + '\n')
    proc = subprocess.run([python, '-c', 'import bombo'], env=_env(),
                          capture_output=True, text=True, cwd=str(path))
    assert proc.returncode != 0, 'bombo visible before installing it'
    return python, site


def check_installed(venv, site, cwd, scripts=CONSOLE_SCRIPTS):
    """bombo from ``site``, a user's config from bombo's shipped ones, the
    console scripts' ``--help`` (run at once, from ``cwd``)."""
    os.makedirs(cwd, exist_ok=True)
    with open(osp.join(cwd, 'my_config.py'), 'w') as f:
        f.write(USER_CONFIG)
    with open(osp.join(cwd, 'my_voc.py'), 'w') as f:
        f.write(USER_VOC_CONFIG)
    bindir = osp.join(str(venv), 'bin')
    for script in CONSOLE_SCRIPTS:
        assert osp.isfile(osp.join(bindir, script)), script
    before = sorted(os.listdir(cwd))
    cmds = [[osp.join(bindir, 'python'), '-c', CHECK_INSTALLED, site,
             osp.join(cwd, 'my_config.py')]]
    # bombo-test, bombo-image-demo and bombo-dist-train are the same
    # function of bombo/cli.py for another tool (one bombo import each)
    helps = {'bombo-train': 'usage: ', 'bombo': 'make_pseudo_masks'}
    cmds += [[osp.join(bindir, s), '--help'] for s in scripts if s in helps]
    outs = _run_all(cmds, cwd)
    assert f'PartialMultiTaskDetector {VERSION}' in outs[next(iter(outs))]
    for s in scripts:
        if s in helps:
            assert helps[s] in outs[f'{s} --help'], (s, outs[f'{s} --help'])
    assert '--work-dir' in outs.get('bombo-train --help', '--work-dir')
    assert sorted(os.listdir(cwd)) == before, '--help wrote files'


def _mim(names, prefix, ext=('.py', )):
    return sorted(n[len(prefix):] for n in names
                  if n.startswith(prefix) and n.endswith(tuple(ext)))


def test_wheel_installs_into_a_clean_venv(tmp_path, deps_dir,
                                          no_build_dirs):
    dist = tmp_path / 'dist'
    configs, tools = _checkout_files()
    _run([PY, '-m', 'pip', 'wheel', ROOT, '--no-deps',
          '--no-build-isolation', '-q', '-w', str(dist)], cwd=tmp_path)
    wheel, = glob.glob(str(dist / '*.whl'))
    assert osp.basename(wheel).startswith(f'bombo-{VERSION}-')
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(f'bombo-{VERSION}.dist-info/METADATA').decode()
        entry_points = z.read(
            f'bombo-{VERSION}.dist-info/entry_points.txt').decode()
    assert _mim(names, 'bombo/.mim/configs/') == configs
    assert _mim(names, 'bombo/.mim/tools/', ('.py', '.sh')) == tools
    assert 'bombo/.mim/model-index.yml' in names
    assert any(n.endswith('dist-info/licenses/LICENSE') for n in names)
    for requirement in ('mmdet<3.4,>=3.3.0', 'mmengine<1.0,>=0.10.4',
                        'mmcv<2.2.0,>=2.0.0', 'tidecv>=1.0.1'):
        assert f'Requires-Dist: {requirement}' in meta, requirement
    for script in CONSOLE_SCRIPTS:
        assert f'\n{script} = bombo.cli:' in entry_points, script

    venv = tmp_path / 'venv'
    python, site = make_venv(venv, deps_dir)
    _run([python, '-m', 'pip', 'install', '-q', '--no-deps', wheel],
         cwd=tmp_path)
    check_installed(venv, site, str(tmp_path / 'user'))


def test_sdist_installs_into_a_clean_venv(tmp_path, deps_dir,
                                          no_build_dirs):
    configs, tools = _checkout_files()
    _run([PY, 'setup.py', '-q', 'egg_info', '--egg-base', str(tmp_path),
          'sdist', '-d', str(tmp_path)], cwd=ROOT)
    sdist, = glob.glob(str(tmp_path / '*.tar.gz'))
    top = f'bombo-{VERSION}/'
    with tarfile.open(sdist) as t:
        names = t.getnames()
    assert _mim(names, top + 'bombo/.mim/configs/') == configs
    assert _mim(names, top + 'bombo/.mim/tools/', ('.py', '.sh')) == tools
    assert top + 'LICENSE' in names and top + 'setup.py' in names

    # pip builds the sdist inside the new environment
    venv = tmp_path / 'venv'
    python, site = make_venv(venv, deps_dir)
    _run([python, '-m', 'pip', 'install', '-q', '--no-deps',
          '--no-build-isolation', sdist], cwd=tmp_path)
    check_installed(venv, site, str(tmp_path / 'user'), scripts=())
