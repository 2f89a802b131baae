"""Packaging of mmseg_fusion (attention-based fusion methods for MMSegmentation 1.x)."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    with open(osp.join(HERE, 'mmseg_fusion', 'version.py'), encoding='utf-8') as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name: str) -> list:
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

setup(
    name='mmseg_fusion',
    version=read_version(),
    description='Attention-based fusion methods (AFA, SSR, AFF/iAFF, CCNet, EMANet, A2-Nets, '
    'HMA) for MMSegmentation 1.x',
    long_description=long_description,
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['mmseg_fusion', 'mmseg_fusion.*']),
    include_package_data=True,
    install_requires=['torch>=2.6'] + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'deploy': read_requirements('deploy.txt')},
    zip_safe=False,
)
