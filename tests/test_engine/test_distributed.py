"""setup_distributed / shutdown_distributed, and the tools ending a run with the latter."""
import gc
import importlib.util
import os.path as osp
import sys
import warnings
import weakref

import pytest
import torch.distributed as dist

from mmseg_fusion.engine import shutdown_distributed


def test_shutdown_without_a_process_group_does_nothing():
    assert not dist.is_initialized()
    assert shutdown_distributed() is False


@pytest.fixture
def world_of_one(tmp_path):
    """A one-process gloo default group, destroyed afterwards if the test left it."""
    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_shutdown_frees_a_group_held_in_reference_cycles(world_of_one):
    """A finished Runner holds the group through its DDP wrapper in reference cycles."""
    group = weakref.ref(dist.group.WORLD)
    cycle = {'group': dist.group.WORLD}
    cycle['self'] = cycle
    del cycle
    gc.disable()  # only shutdown_distributed may collect the cycle
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            assert shutdown_distributed() is True
    finally:
        gc.enable()
    assert group() is None


def test_shutdown_destroys_the_process_group(world_of_one):
    group = dist.group.WORLD  # still referenced here: it cannot be freed, and that is said
    with pytest.warns(RuntimeWarning, match='shutdown_distributed: the default process group '
                      'is still referenced'):
        assert shutdown_distributed() is True
    assert not dist.is_initialized()
    # the group is gone from torch's registry, so nothing of it outlives the run
    with pytest.raises(ValueError, match='Invalid process group'):
        dist.destroy_process_group(group)


def load_tool(repo_root, name):
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(repo_root, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('tool, fails', [('train', False), ('test', False), ('train', True),
                                         ('test', True)])
def test_tools_shut_down_after_a_finished_run(tool, fails, repo_root, demo_config, tmp_path,
                                              monkeypatch):
    """tools/train.py and tools/test.py call shutdown_distributed after the run, not on error."""
    module = load_tool(repo_root, tool)
    calls = []

    class FakeRunner:

        def run(self):
            calls.append(tool)
            if fails:
                raise RuntimeError('run failed')

        train = test = run

    monkeypatch.setattr(module, 'build_runner', lambda cfg: FakeRunner())
    monkeypatch.setattr(module, 'shutdown_distributed', lambda: calls.append('shutdown'))
    monkeypatch.setenv('LOCAL_RANK', '0')
    args = [demo_config] + (['ckpt.pth'] if tool == 'test' else [])
    monkeypatch.setattr(sys, 'argv', [f'{tool}.py', *args, '--work-dir', str(tmp_path)])
    if fails:
        with pytest.raises(RuntimeError, match='run failed'):
            module.main()
        assert calls == [tool]
    else:
        module.main()
        assert calls == [tool, 'shutdown']
