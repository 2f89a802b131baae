"""tools/analysis/benchmark_onnx.py: one row per family with both latencies and their ratio."""
import re

import pytest


def test_rows_and_markdown_table(analysis_tool, capsys, monkeypatch):
    bench = analysis_tool('benchmark_onnx')
    monkeypatch.setattr(bench, 'FAMILIES', {
        'tiny-ccnet': ('ccnet/ccnet_r18-d8_1xb8-600_synthetic-128x128.py', {}),
        'tiny-ssr': ('ssr/ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py', {}),
        'broken': ('ccnet/ccnet_r18-d8_1xb8-600_synthetic-128x128.py',
                   {'model.decode_head.recurrence': 0}),
    })
    rc = bench.main(['--shape', '32', '48', '--repeat', '1'])
    out = capsys.readouterr().out
    assert rc == 1  # one family failed; the others still ran
    assert 'input 1x3x32x48, 1 thread(s) each' in out
    table = out[out.rindex('| family |'):].strip().splitlines()
    assert len(table) == 2 + 3
    for line, scales in zip(table[2:4], ['1', '0.5,0.75,1,1.5,2']):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert cells[2] == scales
        torch_ms, ort_ms, ratio = float(cells[3]), float(cells[4]), float(cells[5])
        assert torch_ms > 0 and ort_ms > 0
        assert ratio == pytest.approx(torch_ms / ort_ms, rel=0.1, abs=0.05)
        assert float(cells[6]) <= 1e-4 * max(1.0, float(cells[7]))
        assert cells[8] == '100.000 %'
    assert re.search(r'\| broken \| .* failed: ValueError: RCCAHead: recurrence', table[4])


def test_every_family_config_exists(analysis_tool, repo_root):
    import os.path as osp
    bench = analysis_tool('benchmark_onnx')
    for config, _ in bench.FAMILIES.values():
        assert osp.isfile(osp.join(repo_root, 'configs', config)), config
    assert {'ccnet', 'ccnet-official', 'emanet', 'emanet-official', 'a2net', 'afa-bilinear',
            'afa-deconv', 'iaff', 'afa-official-ssr', 'ssr', 'hma'} == set(bench.FAMILIES)
