import warnings
from importlib import metadata

from mmseg_fusion.utils import TESTED_VERSIONS, check_host_versions


def test_tested_versions_give_no_message(monkeypatch):
    monkeypatch.setattr(metadata, 'version', lambda dist: TESTED_VERSIONS[dist][0] + '.0')
    assert check_host_versions(warn=False) == []


def test_untested_version_warns_not_raises(monkeypatch):
    monkeypatch.delenv('MMSEG_FUSION_SKIP_VERSION_CHECK', raising=False)
    real = metadata.version
    monkeypatch.setattr(metadata, 'version',
                        lambda dist: '9.9.9' if dist == 'mmcv' else real(dist))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        messages = check_host_versions()
    assert any('mmcv 2.1.0, found 9.9.9' in m for m in messages)
    assert any('found 9.9.9' in str(w.message) for w in caught)


def test_missing_distribution(monkeypatch):
    def missing(dist):
        raise metadata.PackageNotFoundError(dist)

    monkeypatch.setattr(metadata, 'version', missing)
    messages = check_host_versions(warn=False)
    assert len(messages) == len(TESTED_VERSIONS)
    assert all('is not installed' in m for m in messages)
