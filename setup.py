"""bombo: Box-for-Mask and Mask-for-Box for mmdetection 3.x."""
from setuptools import find_packages, setup


def read_requirements(path):
    with open(path) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


setup(
    name='bombo',
    version='0.1.0',
    description='Multi-task partially supervised detection and segmentation '
    '(Box-for-Mask, Mask-for-Box) for mmdetection 3.x',
    packages=find_packages(include=['bombo', 'bombo.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt') + [
        'mmcv==2.1.0'
    ],
    extras_require=dict(tests=read_requirements('requirements/tests.txt')),
)
