"""benchmarks/dist_soak.py: rounds of 2-process train + test, every failure reported."""
import os

import pytest


def test_soak_reports_every_failure_with_its_output(benchmark_script, tmp_path, monkeypatch,
                                                    capsys):
    soak = benchmark_script('dist_soak')
    calls = []

    def fake_run(cmd, timeout):
        what = 'train' if cmd[1].endswith('dist_train.sh') else 'test'
        calls.append(what)
        if what == 'train':
            work = cmd[cmd.index('--work-dir') + 1]
            os.makedirs(work, exist_ok=True)
            open(os.path.join(work, 'iter_4.pth'), 'w').close()
        if len(calls) == 3:  # round 2's training aborts at exit
            return -6, 'iteration 4 done\nterminate called without an active exception', 1.0
        return 0, 'ok', 1.0

    monkeypatch.setattr(soak, 'run', fake_run)
    rc = soak.main(['--rounds', '3', '--load', '0', '--work-dir', str(tmp_path / 'w')])
    out = capsys.readouterr().out
    assert rc == 1
    assert calls == ['train', 'test'] * 3
    assert '=== round 2: train exited -6' in out
    assert 'terminate called without an active exception' in out
    assert 'summary: 3 rounds under load 0: 1 train and 0 test runs failed' in out
    assert '[3/3] train rc=0' in out


def test_soak_all_green_and_bad_arguments(benchmark_script, tmp_path, monkeypatch, capsys):
    soak = benchmark_script('dist_soak')
    monkeypatch.setattr(soak, 'run', lambda cmd, timeout: (0, '', 0.0))
    assert soak.main(['--rounds', '1', '--load', '0', '--work-dir', str(tmp_path)]) == 0
    assert 'test skipped (no checkpoint)' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        soak.parse_args(['--rounds', '0'])
    assert '--rounds and --iters must be >= 1' in capsys.readouterr().err
