"""``MMSEG_FUSION_ENGINE=0`` leaves mmengine as it is; a Runner round trip with it on and off."""
import os.path as osp
import re

import pytest

from mmseg_fusion.utils import ENGINE_SWITCH, engine_changes_enabled


@pytest.mark.parametrize('value,enabled', [
    (None, True), ('', True), ('1', True), ('true', True), (' ON ', True), ('Yes', True),
    ('0', False), ('false', False), ('No', False), ('off', False)])
def test_switch_values(monkeypatch, value, enabled):
    if value is None:
        monkeypatch.delenv(ENGINE_SWITCH, raising=False)
    else:
        monkeypatch.setenv(ENGINE_SWITCH, value)
    assert engine_changes_enabled() is enabled


@pytest.mark.parametrize('value', ['2', 'disable', 'models-only'])
def test_bad_value_names_variable_value_and_expected(monkeypatch, value):
    monkeypatch.setenv(ENGINE_SWITCH, value)
    with pytest.raises(ValueError) as info:
        engine_changes_enabled()
    message = str(info.value)
    assert f'MMSEG_FUSION_ENGINE={value!r}' in message
    assert 'expected 0' in message and '1' in message


PROBE = ('import mmseg_fusion\n'
         'from mmengine.config import utils\n'
         'from mmengine.fileio import get_file_backend\n'
         'from mmengine.runner import CheckpointLoader\n'
         'from mmseg_fusion.registry import REGISTRIES\n'
         "print('BACKEND', type(get_file_backend('x.pth')).__name__)\n"
         "print('LOADER', CheckpointLoader._get_checkpoint_loader('x.pth').__name__)\n"
         "print('SCOPE', 'mmseg_fusion' in utils.MODULE2PACKAGE)\n"
         "print('CHILDREN', REGISTRIES['MODELS'].parent.name)\n"
         "import mmseg.registry\n"
         "print('MODELS', 'SSREncoderDecoder' in mmseg.registry.MODELS.module_dict)\n")


@pytest.mark.parametrize('value,changed', [(None, True), ('0', False), ('off', False)])
def test_import_in_a_fresh_process(run_tool, value, changed):
    env = {} if value is None else {ENGINE_SWITCH: value}
    out = run_tool(['-c', PROBE], env=env).stdout
    assert f"BACKEND {'AtomicLocalBackend' if changed else 'LocalBackend'}" in out, out
    assert f"LOADER {'load_local_checkpoint' if changed else 'load_from_local'}" in out, out
    # what only adds stays: the config scope, its registries and the models
    assert 'SCOPE True' in out and 'CHILDREN model' in out and 'MODELS True' in out, out


def test_import_with_a_bad_value_fails_before_registering(run_tool):
    out = run_tool(['-c', 'import mmseg_fusion'], env={ENGINE_SWITCH: 'maybe'}, check=False)
    assert out.returncode != 0
    assert "ValueError: mmseg_fusion: environment variable MMSEG_FUSION_ENGINE='maybe'" \
        in out.stdout, out.stdout[-3000:]


INIT_MODEL = ('import sys\n'
              'from mmseg.apis import init_model\n'
              "model = init_model(sys.argv[1], sys.argv[2], device='cpu')\n"
              "print('INIT_MODEL OK', type(model).__name__)\n")


@pytest.mark.slow
@pytest.mark.parametrize('switch', ['1', '0'])
def test_runner_round_trip(switch, tmp_path, run_tool, synthetic_root, tiny_options,
                           demo_config, repo_root):
    """Train 2 iterations, resume to 3, ``init_model`` on the checkpoint.

    With the switch off, mmengine 0.10.7 on torch >= 2.6 cannot load its own checkpoints
    (exactly as without this package): the resume and ``init_model`` fail with mmengine's
    ``UnpicklingError``.
    """
    env = {ENGINE_SWITCH: switch}
    train = osp.join(repo_root, 'tools', 'train.py')
    work_dir = str(tmp_path / 'work')
    run_tool([train, demo_config, '--work-dir', work_dir, '--cfg-options',
              *tiny_options(synthetic_root, iters=2, ckpt_interval=2)], env=env)
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)

    resume = run_tool([train, demo_config, '--work-dir', work_dir, '--resume', '--cfg-options',
                       *tiny_options(synthetic_root, iters=3, ckpt_interval=3)], env=env,
                      check=False)
    init = run_tool(['-c', INIT_MODEL, demo_config, ckpt], env=env, check=False)
    refusal = re.compile(r'_pickle\.UnpicklingError: Weights only load failed.*'
                         r'mmengine\.logging\.history_buffer\.HistoryBuffer', re.S)
    if switch == '1':
        assert resume.returncode == 0, resume.stdout[-4000:]
        assert re.search(r'resumed epoch: 0, iter: 2', resume.stdout), resume.stdout[-4000:]
        assert osp.isfile(osp.join(work_dir, 'iter_3.pth'))
        assert init.returncode == 0 and 'INIT_MODEL OK EncoderDecoder' in init.stdout, \
            init.stdout[-4000:]
    else:
        for proc in (resume, init):
            assert proc.returncode != 0, proc.stdout[-4000:]
            assert refusal.search(proc.stdout), proc.stdout[-4000:]
            assert 'CheckpointSecurityError' not in proc.stdout
        assert not osp.exists(osp.join(work_dir, 'iter_3.pth'))
