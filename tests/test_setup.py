"""Packaging (setup.py): sdist and wheel, ``mmseg_fusion/.mim``, the ``mmseg_fusion::`` scope,
openmim as a client, all from a wheel installed into a fresh environment outside the repo."""
import glob
import os
import os.path as osp
import subprocess
import sys
import tarfile
import zipfile

import pytest

SSR_DEMO = 'ssr/ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py'


def _run(args, cwd, timeout=900, env=None):
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', MMSEG_FUSION_SKIP_VERSION_CHECK='1',
                    PYTHONWARNINGS='ignore')
    full_env.pop('PYTHONPATH', None)
    full_env.update(env or {})
    proc = subprocess.run([str(a) for a in args], cwd=str(cwd), env=full_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    assert proc.returncode == 0, f'{" ".join(map(str, args))} exited {proc.returncode}:\n' \
                                 f'{proc.stdout[-6000:]}'
    return proc.stdout


@pytest.fixture(scope='module')
def dist(tmp_path_factory, repo_root):
    """sdist and wheel built by ``python -m build`` from a copy of the tracked files."""
    tmp = tmp_path_factory.mktemp('build')
    src = tmp / 'src'
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=repo_root,
                           check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        if osp.isfile(osp.join(repo_root, name)):
            os.makedirs(src / osp.dirname(name), exist_ok=True)
            with open(osp.join(repo_root, name), 'rb') as f_in, open(src / name, 'wb') as f_out:
                f_out.write(f_in.read())
    out = tmp / 'dist'
    _run([sys.executable, '-m', 'build', '--sdist', '--wheel', '--no-isolation', '--outdir',
          out, src], cwd=tmp)
    (sdist, ), (wheel, ) = glob.glob(str(out / '*.tar.gz')), glob.glob(str(out / '*.whl'))
    return dict(sdist=sdist, wheel=wheel, dir=str(out))


@pytest.mark.slow
def test_sdist_and_wheel_hold_what_users_need(dist, repo_root):
    _run([sys.executable, '-m', 'twine', 'check', '--strict', dist['sdist'], dist['wheel']],
         cwd=dist['dir'])
    with tarfile.open(dist['sdist']) as tar:
        names = {n.split('/', 1)[1] for n in tar.getnames() if '/' in n}
    for needed in ('setup.py', 'pyproject.toml', 'README.md', 'model-index.yml',
                   'requirements/runtime.txt', 'requirements/build.txt', 'configs/' + SSR_DEMO,
                   'configs/ssr/metafile.yaml', 'tools/train.py', 'mmseg_fusion/__init__.py'):
        assert needed in names, needed
    with zipfile.ZipFile(dist['wheel']) as whl:
        names = set(whl.namelist())
        meta = next(whl.read(n).decode() for n in names if n.endswith('.dist-info/METADATA'))
    for needed in ('mmseg_fusion/.mim/model-index.yml', 'mmseg_fusion/.mim/configs/' + SSR_DEMO,
                   'mmseg_fusion/.mim/configs/ssr/metafile.yaml',
                   'mmseg_fusion/.mim/configs/_base_/datasets/synthetic_scales.py',
                   'mmseg_fusion/.mim/tools/train.py', 'mmseg_fusion/.mim/tools/test.py'):
        assert needed in names, needed
    assert not any('__pycache__' in n for n in names)
    # research and developer scripts stay in benchmarks/, outside the package
    scripts = {osp.basename(p) for p in glob.glob(osp.join(repo_root, 'benchmarks', '*.*'))
               if p.endswith(('.py', '.sh'))}
    assert len(scripts) > 3
    assert not any(n.startswith('benchmarks/') or osp.basename(n) in scripts for n in names)
    requires = [line.split(':', 1)[1].strip() for line in meta.splitlines()
                if line.startswith('Requires-Dist:') and 'extra ==' not in line]
    for package in ('torch', 'mmcv', 'mmengine', 'mmsegmentation'):
        assert any(r.startswith(package) for r in requires), (package, requires)


@pytest.fixture(scope='module')
def fresh_env(dist, tmp_path_factory):
    """A new virtual environment with the wheel installed; the host stack (torch, mmcv,
    mmengine, mmseg, openmim) comes from this interpreter's site-packages through a .pth."""
    import site
    import sysconfig
    venv = tmp_path_factory.mktemp('venv') / 'env'
    _run([sys.executable, '-m', 'venv', venv], cwd=venv.parent)
    python = venv / 'bin' / 'python'
    purelib = _run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                   cwd=venv.parent).strip()
    host = [p for p in site.getsitepackages() + [sysconfig.get_paths()['purelib']]
            if osp.isdir(p)]
    with open(osp.join(purelib, 'host_stack.pth'), 'w') as f:
        f.write('\n'.join(dict.fromkeys(host)) + '\n')
    _run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', dist['wheel']],
         cwd=venv.parent)
    return dict(python=str(python), purelib=purelib)


@pytest.mark.slow
def test_installed_wheel_resolves_configs_trains_and_serves_mim(fresh_env, tmp_path,
                                                                synthetic_root, tiny_options):
    python, purelib = fresh_env['python'], fresh_env['purelib']
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    (outside / 'child.py').write_text(f"_base_ = 'mmseg_fusion::{SSR_DEMO}'\n"
                                      "model = dict(fusion='hma')\n")
    out = _run([python, '-c', (
        'import mmseg_fusion, mmseg\n'
        'from mmengine.config import Config\n'
        'from mmengine.registry import init_default_scope\n'
        'from mmseg.registry import MODELS\n'
        'print("package", mmseg_fusion.__file__)\n'
        'cfg = Config.fromfile("child.py")\n'
        'init_default_scope("mmseg")\n'
        'model = MODELS.build(cfg.model)\n'
        'assert type(model.fusion).__name__ == "HMAScaleFusion", model.fusion\n'
        'print("built", type(model).__name__, cfg.model.fusion, cfg.train_cfg.max_iters)\n'
        'for name in ("SSREncoderDecoder", "SSRTTAModel", "RCCAHead", "EMAUHead", "A2Head",\n'
        '             "AFANeck", "IAFFNeck", "CategoryConsistentLoss"):\n'
        '    assert MODELS.get(name) is not None, name\n')], cwd=outside)
    assert f'package {purelib}/mmseg_fusion/__init__.py' in out
    assert 'built SSREncoderDecoder hma 1500' in out
    # the shipped tools/train.py trains the inherited config
    train = osp.join(purelib, 'mmseg_fusion', '.mim', 'tools', 'train.py')
    opts = tiny_options(synthetic_root, iters=2, ckpt_interval=2)
    out = _run([python, train, 'child.py', '--work-dir', 'work', '--cfg-options', *opts],
               cwd=outside)
    assert osp.isfile(outside / 'work' / 'iter_2.pth'), out[-3000:]
    # openmim: the model zoo of model-index.yml, and the shipped tools through `mim test`
    mim = [python, '-c', 'import sys; from mim.cli import cli; sys.exit(cli())']
    out = _run([*mim, 'search', 'mmseg_fusion'], cwd=outside)
    for model in ('ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128', 'ccnet_r50-d8'):
        assert model in out, out[-3000:]
    out = _run([*mim, 'train', 'mmseg_fusion', 'child.py', '--work-dir', 'mim_work',
                '--cfg-options', *opts], cwd=outside)
    assert osp.isfile(outside / 'mim_work' / 'iter_2.pth'), out[-3000:]
    out = _run([*mim, 'test', 'mmseg_fusion', 'child.py', '--checkpoint', 'mim_work/iter_2.pth',
                '--cfg-options', *opts], cwd=outside)
    assert 'mIoU' in out, out[-3000:]
