"""SIGKILL in the middle of a write leaves nothing partial under the final name.

The tools write into a temporary name next to the target and move it into place when complete:

* ``tools/misc/publish_model.py`` (:func:`mmseg_fusion.engine.publish_checkpoint`) and
  ``tools/model_converters/*2fusion.py`` (:func:`mmseg_fusion.engine.atomic_save`): a
  ``mkstemp`` file ``.<name>.pid<PID>-<random>.partial`` in the output folder, then
  ``os.link`` (or ``os.replace``);
* ``tools/dataset_converters/synthetic_scales.py`` (:func:`mmseg_fusion.datasets.generate_dataset`):
  a ``mkdtemp`` folder ``.<name>.pid<PID>-partial-<random>`` next to the target, then
  ``os.replace`` (with ``--overwrite``, the old folder is first moved into
  ``.<name>.pid<PID>-old-<random>``).

Each tool is killed (``SIGKILL`` to its process group) once its temporary output exists and is
being written; the final name must then be absent (or, when it existed before, unchanged).
Their ``finally``/``except`` clean-up cannot run under SIGKILL, so the temporary file or folder
stays behind; the next write of the same target removes it (its writer's process id is in the
name and that process is dead, see :mod:`mmseg_fusion.utils.stale_temporaries`) and succeeds.
"""
import glob
import os
import os.path as osp
import signal
from collections import OrderedDict

import pytest
import torch

from mmseg_fusion.datasets import generate_dataset
from mmseg_fusion.engine import publish_checkpoint

CCNET_CONFIG = ('configs', 'ccnet', 'ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py')


def partial_files(folder: str, name: str) -> list:
    """Temporary files ``.<name>.pid<PID>-<random>.partial`` of the atomic writers."""
    return glob.glob(osp.join(glob.escape(folder), f'.{glob.escape(name)}.pid*.partial'))


def being_written(folder: str, name: str) -> bool:
    """Whether a temporary file for ``name`` exists in ``folder`` and has bytes in it."""
    for path in partial_files(folder, name):
        try:
            if os.path.getsize(path) > 0:
                return True
        except FileNotFoundError:
            pass
    return False


@pytest.fixture(scope='module')
def official_ccnet(tmp_path_factory, repo_root) -> str:
    """An official-format CCNet checkpoint (bare state dict, ResNet-101, 286 MB).

    Made from the target model's keys by inverting the converter's key map: InPlace-ABN layers
    without ``num_batches_tracked``, ``head.cca.gamma`` of shape [1], a bias on ``dsn.0``.
    """
    from mmseg_fusion.converters import build_target_model
    from mmseg_fusion.converters.ccnet import CCNET_RULES

    target = build_target_model(osp.join(repo_root, *CCNET_CONFIG)).state_dict()
    inverse = sorted(((dst, src) for src, dst in CCNET_RULES), key=lambda r: -len(r[0]))
    official = OrderedDict()
    for key, value in target.items():
        if key.endswith('.num_batches_tracked'):
            continue
        dst, src = next((d, s) for d, s in inverse if key == d or key.startswith(d + '.'))
        official[src + key[len(dst):]] = value
    official['head.cca.gamma'] = official.pop('head.cca.gamma.scale').reshape(1)
    official['dsn.0.bias'] = torch.zeros_like(official['dsn.1.running_mean'])
    path = str(tmp_path_factory.mktemp('official') / 'ccnet_official.pth')
    torch.save(official, path)
    return path


@pytest.mark.slow
def test_publish_model_killed_while_writing(tmp_path, official_ccnet, repo_root, start_tool,
                                           kill_group, wait_until):
    out_dir = tmp_path / 'published'
    out_dir.mkdir()
    out_file = str(out_dir / 'ccnet.pth')
    log = str(tmp_path / 'publish.log')
    tool = osp.join(repo_root, 'tools', 'misc', 'publish_model.py')
    proc = start_tool([tool, official_ccnet, out_file], log)
    wait_until(lambda: being_written(str(out_dir), 'ccnet.pth'), proc, log)
    assert kill_group(proc) == -signal.SIGKILL

    # no published file (its final name is ccnet-<sha8>.pth); only the temporary one is left
    assert glob.glob(str(out_dir / 'ccnet*.pth')) == []
    stale = partial_files(str(out_dir), 'ccnet.pth')
    assert len(stale) == 1 and sorted(os.listdir(out_dir)) == [osp.basename(stale[0])]

    # a second run (in this process: the tool is a thin CLI) removes the dead writer's
    # temporary file and publishes
    path, _ = publish_checkpoint(official_ccnet, out_file)
    assert glob.glob(str(out_dir / 'ccnet-*.pth')) == [path]
    weights = torch.load(path, weights_only=True)['state_dict']
    source = torch.load(official_ccnet, weights_only=True)
    assert list(weights) == list(source)
    assert all(torch.equal(weights[k], source[k]) for k in source)
    assert partial_files(str(out_dir), 'ccnet.pth') == []
    assert sorted(os.listdir(out_dir)) == [osp.basename(path)]


@pytest.mark.slow
def test_converter_killed_while_writing(tmp_path, official_ccnet, repo_root, start_tool,
                                        kill_group, wait_until):
    out_dir = tmp_path / 'converted'
    out_dir.mkdir()
    dst = out_dir / 'ccnet_r101.pth'
    log = str(tmp_path / 'convert.log')
    tool = osp.join(repo_root, 'tools', 'model_converters', 'ccnet2fusion.py')
    proc = start_tool([tool, official_ccnet, str(dst)], log)
    wait_until(lambda: being_written(str(out_dir), dst.name), proc, log)
    assert kill_group(proc) == -signal.SIGKILL

    assert not osp.lexists(dst)
    stale = partial_files(str(out_dir), dst.name)
    assert len(stale) == 1 and sorted(os.listdir(out_dir)) == [osp.basename(stale[0])]
    # the next conversion removes the dead writer's temporary file
    from mmseg_fusion.converters import convert_ccnet
    from mmseg_fusion.converters.cli import converter_main
    config = osp.join(repo_root, *CCNET_CONFIG)
    assert converter_main('CCNet', convert_ccnet, config, 't', [official_ccnet, str(dst)]) == 0
    assert sorted(os.listdir(out_dir)) == [dst.name]


def tree(folder: str) -> dict:
    """``{relative path: bytes}`` of every file under ``folder``."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = osp.join(root, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, folder)] = f.read()
    return files


@pytest.mark.slow
@pytest.mark.parametrize('existing', [False, True], ids=['new', 'overwrite'])
def test_data_generator_killed_midway(existing, tmp_path, repo_root, start_tool, kill_group,
                                      wait_until):
    parent = tmp_path / 'data'
    parent.mkdir()
    out_dir = parent / 'synthetic_scales'
    before = None
    if existing:
        generate_dataset(str(out_dir), num_train=2, num_val=1, image_size=16, seed=1)
        before = tree(str(out_dir))
    log = str(tmp_path / 'generate.log')
    tool = osp.join(repo_root, 'tools', 'dataset_converters', 'synthetic_scales.py')
    args = [tool, str(out_dir), '--num-train', '20000', '--num-val', '10', '--image-size', '96',
            *(['--overwrite'] if existing else [])]

    def midway() -> bool:
        # at least 10 training images written into the temporary folder
        pattern = osp.join(glob.escape(str(parent)), '.synthetic_scales.pid*-partial-*', 'img_dir',
                           'train', '*.png')
        return len(glob.glob(pattern)) >= 10

    proc = start_tool(args, log)
    wait_until(midway, proc, log)
    assert kill_group(proc) == -signal.SIGKILL

    if existing:
        assert tree(str(out_dir)) == before  # the old dataset, complete and unchanged
    else:
        assert not osp.lexists(out_dir)
    stale = [name for name in os.listdir(parent) if name != 'synthetic_scales']
    assert len(stale) == 1 and stale[0].startswith(f'.synthetic_scales.pid{proc.pid}-partial-')
    assert len(os.listdir(parent / stale[0] / 'img_dir' / 'train')) >= 10

    # a second run (in this process: the tool is a thin CLI) removes the dead writer's folder
    generate_dataset(str(out_dir), num_train=3, num_val=2, image_size=32, overwrite=True)
    assert len(os.listdir(out_dir / 'img_dir' / 'train')) == 3
    assert len(os.listdir(out_dir / 'ann_dir' / 'val')) == 2
    assert os.listdir(parent) == ['synthetic_scales']
