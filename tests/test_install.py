"""scripts/bootstrap.sh in an existing environment: a user's torch is kept only if >= 2.6.

Nothing is installed: ``--check-torch VERSION`` prints the decision alone, and the full set-up
runs against a fake interpreter (``MMSEG_FUSION_PYTHON``) that reports a given torch version,
answers every import check and records each ``python -m pip ...`` call instead of running it.
"""
import os
import os.path as osp
import shutil
import stat
import subprocess
from typing import Dict, List, Tuple

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BOOTSTRAP = osp.join(ROOT, 'scripts', 'bootstrap.sh')

pytestmark = pytest.mark.slow

#: a ``python`` that installs nothing: ``$FAKE_TORCH`` is its torch version (none when empty),
#: ``import mmcv, mmcv.ops`` exits ``$FAKE_MMCV_OPS_RC`` and ``import mmcv;`` (is mmcv 2.1.0
#: installed at all?) ``$FAKE_MMCV_RC``; pip calls are only logged
FAKE_PYTHON = r'''#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_LOG"
case "$*" in
    "-m pip "*) exit 0 ;;
    *"sys.prefix"*) echo "$FAKE_PREFIX" ;;
    *"torch.__version__"*) [[ -n "$FAKE_TORCH" ]] || exit 1; echo "$FAKE_TORCH" ;;
    *"import mmcv, mmcv.ops"*) exit "${FAKE_MMCV_OPS_RC:-0}" ;;
    *"import mmcv;"*) exit "${FAKE_MMCV_RC:-0}" ;;
    *) exit 0 ;;
esac
'''


def check_torch(version: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    """``bash scripts/bootstrap.sh --check-torch VERSION`` (the script given by ``cwd``)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('MMSEG_FUSION_PYTHON', 'VIRTUAL_ENV')}
    return subprocess.run(['bash', osp.join('scripts', 'bootstrap.sh'), '--check-torch',
                           version], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize('version', ['2.6.0', '2.6.0+cu124', '2.7.1', '2.13.0', '3.0.0',
                                     '2.10.0.dev20250101'])
def test_check_torch_keeps_2_6_and_newer(version):
    proc = check_torch(version)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'keep'


@pytest.mark.parametrize('version', ['2.5.1', '2.5.1+cpu', '2.0.0', '1.13.1'])
def test_check_torch_replaces_older_and_says_why(version):
    proc = check_torch(version)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('replace: '), proc.stdout
    assert f'torch {version} is older than 2.6' in proc.stdout
    assert 'weights_only=True' in proc.stdout


@pytest.mark.parametrize('version', ['', 'abc', '2', 'v2.6.0'])
def test_check_torch_replaces_what_is_no_version(version):
    proc = check_torch(version)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('replace: ') and 'is not a torch version' in proc.stdout


def test_check_torch_touches_no_environment(tmp_path):
    # a copy of the script in a folder without .venv: the check must not create one
    (tmp_path / 'scripts').mkdir()
    shutil.copy(BOOTSTRAP, tmp_path / 'scripts' / 'bootstrap.sh')
    proc = check_torch('2.5.1', cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('replace: ')
    assert sorted(os.listdir(tmp_path)) == ['scripts']
    usage = subprocess.run(['bash', BOOTSTRAP, '--check-torch'], capture_output=True,
                           text=True, timeout=60)
    assert usage.returncode == 2 and 'usage' in usage.stderr


def run_setup(tmp_path, torch_version: str, mmcv_ops_rc: int = 0,
              mmcv_rc: int = 0) -> Tuple[subprocess.CompletedProcess, List[str]]:
    """Run the whole set-up against :data:`FAKE_PYTHON`; returns it and the pip calls."""
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    prefix = tmp_path / 'prefix'
    prefix.mkdir()
    log = tmp_path / 'calls.log'
    env: Dict[str, str] = {k: v for k, v in os.environ.items()
                           if k not in ('VIRTUAL_ENV', 'TORCH_VERSION', 'MAX_JOBS')}
    env.update(MMSEG_FUSION_PYTHON=str(fake), FAKE_LOG=str(log), FAKE_PREFIX=str(prefix),
               FAKE_TORCH=torch_version, FAKE_MMCV_OPS_RC=str(mmcv_ops_rc),
               FAKE_MMCV_RC=str(mmcv_rc))
    proc = subprocess.run(['bash', BOOTSTRAP], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (prefix / '.mmseg_fusion-setup').is_file()  # the stamp went to the fake prefix
    pips = [line for line in log.read_text().splitlines() if line.startswith('-m pip ')]
    return proc, pips


def test_setup_keeps_a_torch_from_2_6(tmp_path):
    proc, pips = run_setup(tmp_path, '2.6.0+cu124')
    assert 'keeping the installed torch 2.6.0+cu124 (>= 2.6)' in proc.stderr
    assert not any('torch==' in line for line in pips), pips
    assert not any('mmcv==2.1.0' in line for line in pips), pips  # its ops already load


def test_setup_replaces_an_older_torch_and_rebuilds_mmcv(tmp_path):
    proc, pips = run_setup(tmp_path, '2.5.1', mmcv_ops_rc=1)
    assert 'torch 2.5.1 is older than 2.6' in proc.stderr
    assert 'installing torch==2.13.0' in proc.stderr
    torch_installs = [line for line in pips if 'torch==2.13.0' in line]
    assert len(torch_installs) == 1, pips
    # mmcv (and pip's cached wheel) built against the old torch: rebuilt, no cache
    (mmcv, ) = [line for line in pips if 'mmcv==2.1.0' in line]
    assert '--no-build-isolation' in mmcv
    assert '--force-reinstall --no-deps --no-cache-dir' in mmcv
    assert pips.index(torch_installs[0]) < pips.index(mmcv)


def test_setup_installs_torch_where_none_is(tmp_path):
    proc, pips = run_setup(tmp_path, '', mmcv_ops_rc=1, mmcv_rc=1)
    assert 'no importable torch' in proc.stderr
    assert sum('torch==2.13.0' in line for line in pips) == 1, pips
    (mmcv, ) = [line for line in pips if 'mmcv==2.1.0' in line]
    assert '--force-reinstall' not in mmcv  # nothing to replace: pip's cached wheel is fine


def test_setup_rebuilds_an_mmcv_whose_ops_do_not_load(tmp_path):
    proc, pips = run_setup(tmp_path, '2.13.0', mmcv_ops_rc=1, mmcv_rc=0)
    assert 'keeping the installed torch 2.13.0' in proc.stderr
    assert 'its ops do not load' in proc.stderr
    (mmcv, ) = [line for line in pips if 'mmcv==2.1.0' in line]
    assert '--force-reinstall --no-deps --no-cache-dir' in mmcv
