"""tools/analysis/benchmark_onnx.py: one row per CONFIG (or --family) with both latencies and
their ratio, then a Markdown table."""
import os.path as osp
import re

import pytest

TINY_CCNET = osp.join('configs', 'ccnet', 'ccnet_r18-d8_1xb8-600_synthetic-128x128.py')
TINY_SSR = osp.join('configs', 'ssr', 'ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py')


def table_of(out: str) -> list:
    """The lines of the final Markdown table (header, rule, rows)."""
    return out[out.rindex('| name |'):].strip().splitlines()


def test_rows_and_markdown_table(analysis_tool, capsys, monkeypatch, repo_root):
    bench = analysis_tool('benchmark_onnx')
    monkeypatch.chdir(repo_root)
    # a family whose options break its config: its row fails, the others still run
    monkeypatch.setitem(bench.FAMILIES, 'broken', (
        'ccnet/ccnet_r18-d8_1xb8-600_synthetic-128x128.py', {'model.decode_head.recurrence': 0}))
    rc = bench.main([TINY_CCNET, TINY_SSR, '--family', 'broken', '--shape', '32', '48',
                     '--repeat', '1'])
    out = capsys.readouterr().out
    assert rc == 1  # one failed; the others still ran
    assert 'input 1x3x32x48, 1 thread(s) each, median of 1 runs' in out
    table = table_of(out)
    assert len(table) == 2 + 3
    header = [c.strip() for c in table[0].strip('|').split('|')]
    assert len(header) == 9 and header[:3] == ['name', 'config', 'scales']
    for line, config, scales in zip(table[2:4], [TINY_CCNET, TINY_SSR],
                                    ['1', '0.5,0.75,1,1.5,2']):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert len(cells) == 9, line
        assert cells[0] == osp.splitext(osp.basename(config))[0]
        assert cells[1] == f'`{config}`'
        assert cells[2] == scales
        torch_ms, ort_ms, ratio = float(cells[3]), float(cells[4]), float(cells[5])
        assert torch_ms > 0 and ort_ms > 0
        assert ratio == pytest.approx(torch_ms / ort_ms, rel=0.1, abs=0.05)
        assert float(cells[6]) <= 1e-4 * max(1.0, float(cells[7]))
        assert cells[8] == '100.000 %'
    assert re.search(r'^\| broken \| `configs/ccnet/.*` \| failed: ValueError: RCCAHead: '
                     r'recurrence', table[4])


def test_cfg_options_reach_every_config(analysis_tool, capsys, monkeypatch, repo_root):
    bench = analysis_tool('benchmark_onnx')
    monkeypatch.chdir(repo_root)
    rc = bench.main([TINY_CCNET, '--shape', '32', '48', '--repeat', '1', '--cfg-options',
                     'model.decode_head.recurrence=0'])
    table = table_of(capsys.readouterr().out)
    assert rc == 1 and len(table) == 3
    assert 'failed: ValueError: RCCAHead: recurrence must be an int >= 1, got 0' in table[2]


def test_command_line(analysis_tool, capsys, repo_root, monkeypatch):
    bench = analysis_tool('benchmark_onnx')
    monkeypatch.chdir(repo_root)
    for argv in ([], ['--shape', '32', '48'], ['no/such/config.py'],
                 [TINY_CCNET, '--repeat', '0'], ['--family', 'nonsense']):
        with pytest.raises(SystemExit) as err:
            bench.parse_args(argv)
        assert err.value.code == 2, argv
    assert 'give at least one CONFIG or --family' in capsys.readouterr().err
    args = bench.parse_args([TINY_CCNET, '--family', 'afa-deconv', 'ssr', '--cfg-options',
                             'model.decode_head.num_classes=3'])
    targets = bench.resolve_targets(args)
    assert [name for name, _, _ in targets] == [
        'ccnet_r18-d8_1xb8-600_synthetic-128x128', 'afa-deconv', 'ssr']
    assert targets[0][1:] == (TINY_CCNET, {'model.decode_head.num_classes': 3})
    # a family keeps the options that make its variant, the user's are added
    assert targets[1][2] == {'model.neck.upsample': 'deconv', 'model.decode_head.num_classes': 3}
    assert targets[2][1] == osp.join(repo_root, 'configs', bench.FAMILIES['ssr'][0])
    every = bench.resolve_targets(bench.parse_args(['--family', 'all']))
    assert [name for name, _, _ in every] == list(bench.FAMILIES)


def test_every_family_config_exists(analysis_tool, repo_root):
    bench = analysis_tool('benchmark_onnx')
    for config, _ in bench.FAMILIES.values():
        assert osp.isfile(osp.join(repo_root, 'configs', config)), config
    assert {'ccnet', 'ccnet-official', 'emanet', 'emanet-official', 'a2net', 'afa-bilinear',
            'afa-deconv', 'iaff', 'afa-official-ssr', 'ssr', 'hma'} == set(bench.FAMILIES)
