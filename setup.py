"""Packaging of mmseg_fusion (attention-based fusion methods for MMSegmentation 1.x).

As OpenMMLab codebases do, ``configs/``, ``tools/`` and ``model-index.yml`` (with the
metafiles under ``configs/``) are shipped inside the package as ``mmseg_fusion/.mim/``: copies
when a wheel or an sdist is built (``pip install .``, ``python -m build``), links to the
originals for an editable install (``pip install -e .``). That is where mmengine finds
``_base_ = 'mmseg_fusion::...'`` configs and openmim (``mim search/train/test mmseg_fusion``)
finds the model zoo and the tools.
"""
import os
import os.path as osp
import re
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    with open(osp.join(HERE, 'mmseg_fusion', 'version.py'), encoding='utf-8') as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements(name: str) -> list:
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension() -> None:
    """Put ``MIM_FILES`` into ``mmseg_fusion/.mim``: links when editable, else copies."""
    if any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build', 'build_py',
                                         'install')):
        mode = 'copy'
    else:
        return
    mim = osp.join(HERE, 'mmseg_fusion', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim, name)
        if not osp.exists(src):  # neither a checkout nor an sdist: nothing to ship
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        else:
            shutil.copyfile(src, dst)


with open(osp.join(HERE, 'README.md'), encoding='utf-8') as f:
    long_description = f.read()

add_mim_extension()

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
    package_data={'mmseg_fusion': ['.mim/model-index.yml', '.mim/configs/**/*',
                                   '.mim/tools/**/*']},
    install_requires=['torch>=2.6'] + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt'),
                    'deploy': read_requirements('deploy.txt')},
    zip_safe=False,
)
