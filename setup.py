"""bombo: Box-for-Mask and Mask-for-Box for mmdetection 3.x.

``pip install .`` / ``pip install -e .`` (docs/install.md). The wheel and
the sdist carry the configs as ``bombo/.mim/configs`` (mmdet's layout, so
that ``_base_ = 'bombo::bombo/bombo_r18_fpn_voc.py'`` resolves) and the tools
as ``bombo/.mim/tools``, run by the console scripts ``bombo-train``,
``bombo-test``, ``bombo-image-demo``, ``bombo-dist-train`` and ``bombo TOOL``
(``python -m bombo TOOL``; bombo/cli.py). In the checkout both are symlinks
(to ``configs/`` and ``tools/``). Builds run in a temporary folder, so that
``pip wheel .`` leaves no ``build/`` in the tree.

install_requires holds version ranges; the exact versions ``make`` installs
and tests are pinned in requirements/.
"""
import atexit
import os.path as osp
import shutil
import tempfile

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    """``__version__`` from bombo/version.py, without importing bombo."""
    scope = {}
    with open(osp.join(HERE, 'bombo', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_readme() -> str:
    path = osp.join(HERE, 'README.md')
    if not osp.isfile(path):
        return ''
    with open(path, encoding='utf-8') as f:
        return f.read()


def temporary_build_base() -> str:
    """A build folder outside the tree, removed when setup.py exits
    (``--build-base`` on the command line still wins)."""
    path = tempfile.mkdtemp(prefix='bombo-build-')
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# torch is not listed: install the build that matches your CUDA first
# (docs/install.md); mmcv must be built with its ops, and pulls OpenCV.
INSTALL_REQUIRES = [
    'mmengine>=0.10.4,<1.0',
    'mmcv>=2.0.0,<2.2.0',
    'mmdet>=3.3.0,<3.4',
    'numpy',
    'scipy',
    'scikit-learn',
    'matplotlib',
    'pycocotools',
    'faster-coco-eval>=1.8.0',
    'tidecv>=1.0.1',
    'appdirs',  # imported by tidecv 1.0.1, which does not declare it
]

setup(
    name='bombo',
    version=read_version(),
    description='Multi-task partially supervised detection and segmentation '
    '(Box-for-Mask, Mask-for-Box) for mmdetection 3.x',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    project_urls={'Paper': 'https://arxiv.org/abs/2411.17536'},
    packages=find_packages(include=['bombo', 'bombo.*']),
    package_data={
        'bombo': ['.mim/model-index.yml', '.mim/configs/**/*.py',
                  '.mim/tools/**/*.py', '.mim/tools/*.sh'],
    },
    entry_points={
        'console_scripts': [
            'bombo=bombo.cli:main',
            'bombo-train=bombo.cli:train',
            'bombo-test=bombo.cli:test',
            'bombo-image-demo=bombo.cli:image_demo',
            'bombo-dist-train=bombo.cli:dist_train',
        ],
    },
    python_requires='>=3.9',
    install_requires=INSTALL_REQUIRES,
    extras_require=dict(tests=['pytest'], tensorboard=['tensorboard']),
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    options={'build': {'build_base': temporary_build_base()}},
    zip_safe=False,
)
