"""tools/deployment/pytorch2onnx.py: export, verification, atomic writes, refusals."""
import hashlib
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
import torch

SSR_CONFIG = osp.join('configs', 'ssr', 'ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py')
CCNET_CONFIG = osp.join('configs', 'ccnet', 'ccnet_r18-d8_1xb8-600_synthetic-128x128.py')


@pytest.fixture(scope='module')
def tool(repo_root):
    path = osp.join(repo_root, 'tools', 'deployment', 'pytorch2onnx.py')
    spec = importlib.util.spec_from_file_location('pytorch2onnx', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def checkpoints(repo_root, tmp_path_factory):
    from mmseg_fusion.deployment import build_export_model
    folder = tmp_path_factory.mktemp('ckpt')
    out = {}
    for name, config in (('ssr', SSR_CONFIG), ('ccnet', CCNET_CONFIG)):
        torch.manual_seed(0)
        model = build_export_model(osp.join(repo_root, config))
        out[name] = str(folder / f'{name}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), out[name])
    return out


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_cli_exports_verified_dynamic_ssr(repo_root, checkpoints, run_tool, tmp_path):
    import onnxruntime as ort
    out = tmp_path / 'ssr.onnx'
    args = [osp.join(repo_root, 'tools', 'deployment', 'pytorch2onnx.py'),
            osp.join(repo_root, SSR_CONFIG), checkpoints['ssr'], str(out), '--shape', '64',
            '64', '--dynamic', '--scales', '0.5', '1.0', '1.5', '--verify']
    proc = run_tool(args, env=dict(OMP_NUM_THREADS='1'))
    assert 'SSREncoderDecoder: SSR ssr over scales (0.5, 1.0, 1.5)' in proc.stdout
    assert 'verify 64x64' in proc.stdout and 'verify 49x49' in proc.stdout, proc.stdout
    assert proc.stdout.count(' ok\n') == 2 and f'wrote {out}' in proc.stdout
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    logits, labels = session.run(None, {'input': np.zeros((1, 3, 37, 41), np.float32)})
    assert logits.shape == (1, 5, 37, 41) and labels.shape == (1, 37, 41)
    # an existing OUT is refused without --force, untouched
    before = digest(out)
    proc = run_tool(args, check=False)
    assert proc.returncode == 1 and 'pass --force' in proc.stdout
    assert digest(out) == before


def test_images_flip_and_static_shape(repo_root, checkpoints, tool, tmp_path, capsys):
    import mmcv
    images = []
    for i, (h, w) in enumerate([(50, 70), (64, 64)]):
        images.append(str(tmp_path / f'{i}.png'))
        mmcv.imwrite(np.random.RandomState(i).randint(0, 256, (h, w, 3), np.uint8),
                     images[-1])
    out = tmp_path / 'ccnet.onnx'
    rc = tool.main([osp.join(repo_root, CCNET_CONFIG), checkpoints['ccnet'], str(out),
                    '--shape', '48', '56', '--flip', '--verify', *images])
    text = capsys.readouterr().out
    assert rc == 0, text
    # a static graph: the images are resized to its size
    assert text.count('verify 48x56') == 2 and 'with flip' in text and 'single-scale' in text


def test_failures_write_nothing(repo_root, checkpoints, tool, tmp_path, capsys):
    config = osp.join(repo_root, CCNET_CONFIG)
    out = tmp_path / 'model.onnx'
    out.write_bytes(b'old')
    # verification beyond the tolerance (a negative one cannot be met), even with --force
    rc = tool.main([config, checkpoints['ccnet'], str(out), '--shape', '32', '32', '--verify',
                    '--atol', '-1', '--force'])
    err = capsys.readouterr().err
    assert rc == 1 and 'nothing written' in err and 'beyond the tolerance' in err
    assert out.read_bytes() == b'old' and os.listdir(tmp_path) == ['model.onnx']
    # scales need an SSR model
    rc = tool.main([config, checkpoints['ccnet'], str(tmp_path / 'x.onnx'), '--scales', '0.5',
                    '1.0'])
    assert rc == 1 and 'need an SSREncoderDecoder' in capsys.readouterr().err
    # an input is never the output, --force or not
    rc = tool.main([config, checkpoints['ccnet'], checkpoints['ccnet'], '--force'])
    assert rc == 1 and 'never overwritten' in capsys.readouterr().err
    # a checkpoint of another model is refused by the strict load
    rc = tool.main([config, checkpoints['ssr'], str(tmp_path / 'y.onnx')])
    assert rc == 1 and 'does not fit the model' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ['model.onnx']
