"""mmseg_fusion.converters.cli: the shared command line of tools/model_converters."""
from collections import OrderedDict

import torch

from mmseg_fusion.converters import build_target_model, strip_prefix
from mmseg_fusion.converters.cli import converter_main


def identity(ckpt, progress=False):
    return strip_prefix(ckpt['net'], 'module.'), []


def test_converter_main(tmp_path, demo_config, capsys):
    model = build_target_model(demo_config, {'model.decode_head.num_classes': 3})
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({'net': OrderedDict((f'module.{k}', v) for k, v in model.state_dict().items())},
               src)
    # the config's own number of classes does not fit: error, nothing written
    assert converter_main('Demo', identity, demo_config, 'demo', [str(src), str(dst)]) == 1
    err = capsys.readouterr().err
    assert 'Demo conversion failed, nothing written' in err and 'shape mismatches' in err
    assert not dst.exists()
    argv = [str(src), str(dst), '--cfg-options', 'model.decode_head.num_classes=3']
    assert converter_main('Demo', identity, 'unused.py', 'demo',
                          argv + ['--config', demo_config]) == 0
    assert 'loads strictly into' in capsys.readouterr().out
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['cfg_options'] == {'model.decode_head.num_classes': 3}
    assert converter_main('Demo', identity, demo_config, 'demo', argv) == 1
    assert 'pass --force' in capsys.readouterr().err
    assert converter_main('Demo', identity, demo_config, 'demo', argv + ['--force']) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dst.pth', 'src.pth']


def test_sha256_of_a_local_source(tmp_path, demo_config, capsys):
    from mmseg_fusion.engine.publish import sha256_file

    model = build_target_model(demo_config)
    src, dst = tmp_path / 'src.pth', tmp_path / 'dst.pth'
    torch.save({'net': model.state_dict()}, src)
    digest = sha256_file(str(src))
    wrong = '0' * 64
    assert converter_main('Demo', identity, demo_config, 'demo',
                          [str(src), str(dst), '--sha256', wrong]) == 1
    err = capsys.readouterr().err
    assert 'Demo conversion failed, nothing written' in err
    assert f'sha256 mismatch for {src}: expected {wrong}, got {digest}' in err
    assert not dst.exists()
    assert converter_main('Demo', identity, demo_config, 'demo',
                          [str(src), str(dst), '--sha256', digest.upper()]) == 0
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['source_sha256'] == digest and 'source_url' not in meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dst.pth', 'src.pth']
