"""mmseg_fusion.converters.common: safe reading, key helpers, strict check, atomic writing."""
import os
from collections import OrderedDict

import pytest
import torch
import torch.nn as nn

from mmseg_fusion.converters import (
    ConversionError,
    build_target_model,
    check_state_dict,
    convert_file,
    fill_num_batches_tracked,
    load_source_checkpoint,
    norm_prefixes,
    rename_by_prefix,
    save_converted,
    strip_prefix,
)


class Planted:
    """Unpickling it would create ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def tiny_net():
    return nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3))


def test_load_source_checkpoint(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'net': {'w': torch.ones(2)}}, good)
    assert load_source_checkpoint(str(good))['net']['w'].shape == (2, )

    with pytest.raises(ConversionError, match='does not exist'):
        load_source_checkpoint(str(tmp_path / 'missing.pth'))

    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    torch.save({'net': {'w': torch.ones(1)}, 'x': Planted(marker)}, evil)
    with pytest.raises(ConversionError, match='was not unpickled'):
        load_source_checkpoint(str(evil))
    assert not marker.exists()

    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ConversionError, match='truncated or corrupt'):
        load_source_checkpoint(str(truncated))

    legacy = tmp_path / 'legacy.pth'
    torch.save({'w': torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:-40])
    with pytest.raises(ConversionError, match='truncated or corrupt'):
        load_source_checkpoint(str(legacy))

    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(ConversionError, match='truncated or corrupt'):
        load_source_checkpoint(str(text))


def test_strip_prefix_and_rename(capfd):
    sd = OrderedDict([('module.a.b', torch.ones(1)), ('module.ab', torch.ones(1))])
    assert list(strip_prefix(sd, 'module.')) == ['a.b', 'ab']
    assert list(strip_prefix({'x': 1}, 'module.')) == ['x']
    out, unmapped = rename_by_prefix(
        {'a.b.w': 1, 'a.c': 2, 'ab.w': 3, 'a': 4},
        [('a', 'A'), ('a.b', 'AB')], progress=True)
    assert out == {'AB.w': 1, 'A.c': 2, 'A': 4}
    assert unmapped == ['ab.w']  # a prefix matches only up to a '.'
    assert '4/4' in capfd.readouterr().out  # mmengine's progress bar


def test_fill_num_batches_tracked():
    sd = {'bn.running_var': torch.ones(2), 'bn2.running_var': torch.ones(2),
          'bn2.num_batches_tracked': torch.tensor(7)}
    assert norm_prefixes(sd) == ['bn', 'bn2']
    assert fill_num_batches_tracked(sd) == ['bn.num_batches_tracked']
    assert sd['bn.num_batches_tracked'].dtype == torch.long
    assert int(sd['bn2.num_batches_tracked']) == 7


def test_check_state_dict():
    net = tiny_net()
    good = OrderedDict((k, torch.full_like(v, 2)) for k, v in net.state_dict().items())
    check_state_dict(good, net)
    assert float(net[0].weight.flatten()[0]) == 2  # loaded
    bad = OrderedDict(good)
    del bad['1.running_mean']
    bad['0.weight'] = torch.ones(3, 2, 3, 3)
    bad['2.weight'] = torch.ones(1)
    with pytest.raises(ConversionError) as info:
        check_state_dict(bad, net, unmapped=['src.x', 'src.y'], source='X')
    msg = str(info.value)
    assert msg.startswith('X does not match the target model; nothing was written.')
    assert '2 source keys with no mapping:\n  src.x\n  src.y' in msg
    assert '1 model keys missing from the conversion:\n  1.running_mean' in msg
    assert '1 converted keys the model does not have:\n  2.weight' in msg
    assert '0.weight: converted (3, 2, 3, 3), model (3, 2, 1, 1)' in msg


def test_save_converted(tmp_path):
    dst = tmp_path / 'out.pth'
    save_converted({'w': torch.ones(2)}, str(dst), {'converted_from': 'X', 'n': (1, 2)})
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta'] == {'converted_from': 'X', 'n': (1, 2)}
    with pytest.raises(FileExistsError, match='--force'):
        save_converted({'w': torch.zeros(2)}, str(dst), {})
    torch.testing.assert_close(torch.load(dst, weights_only=True)['state_dict']['w'],
                               torch.ones(2))
    save_converted({'w': torch.zeros(2)}, str(dst), {}, force=True)
    torch.testing.assert_close(torch.load(dst, weights_only=True)['state_dict']['w'],
                               torch.zeros(2))
    with pytest.raises(ConversionError, match='output folder'):
        save_converted({}, str(tmp_path / 'no' / 'x.pth'), {})
    with pytest.raises(TypeError):
        save_converted({'w': torch.ones(1)}, str(tmp_path / 'y.pth'), {'bad': object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.pth']


def test_convert_file_on_a_small_config(tmp_path, demo_config):
    model = build_target_model(demo_config)
    src = tmp_path / 'src.pth'
    torch.save({'net': OrderedDict((f'module.{k}', v) for k, v in
                                   model.state_dict().items())}, src)

    def convert(ckpt, progress=False):
        return strip_prefix(ckpt['net'], 'module.'), []

    dst = tmp_path / 'dst.pth'
    assert convert_file(str(src), str(dst), convert, demo_config, 'Test') == str(dst)
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['converted_from'] == 'Test' and meta['source_file'] == 'src.pth'
    assert len(meta['source_sha256']) == 64 and meta['mmseg_fusion_version']
    with pytest.raises(FileExistsError):
        convert_file(str(src), str(dst), convert, demo_config, 'Test')

    def lossy(ckpt, progress=False):
        sd = strip_prefix(ckpt['net'], 'module.')
        sd.popitem()
        return sd, ['module.unknown']

    with pytest.raises(ConversionError, match='module.unknown'):
        convert_file(str(src), str(tmp_path / 'other.pth'), lossy, demo_config, 'Test')
    with pytest.raises(ConversionError, match='target config'):
        convert_file(str(src), str(tmp_path / 'other.pth'), convert, 'missing.py', 'Test')
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dst.pth', 'src.pth']
