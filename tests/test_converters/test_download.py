"""mmseg_fusion.converters.download: URL sources downloaded with progress, cached, sha256-checked.

Served by the loopback HTTP server of ``conftest.py`` (``checkpoint_server``); the end-to-end
conversion of an official-format checkpoint from a URL is in ``test_emanet.py``.
"""
import hashlib
import os
import os.path as osp

import pytest

from mmseg_fusion.converters import ConversionError
from mmseg_fusion.converters import download as dl
from mmseg_fusion.converters.download import (
    ChecksumError,
    DownloadError,
    cache_path,
    default_cache_dir,
    direct_download_url,
    download,
    is_url,
    normalise_sha256,
    resolve_source,
)

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # not a multiple of the chunk size
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def test_is_url_and_normalise_sha256():
    assert is_url('http://x/a.pth') and is_url('HTTPS://x/a.pth')
    assert not is_url('a.pth') and not is_url('ftp://x/a.pth') and not is_url('/tmp/http:x')
    assert normalise_sha256(f' {DIGEST.upper()}\n') == DIGEST
    with pytest.raises(ValueError, match=r"64 hexadecimal digits, got 'abc' \(3 characters\)"):
        normalise_sha256('abc')
    with pytest.raises(ValueError, match='64 hexadecimal digits'):
        normalise_sha256('g' * 64)


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    assert default_cache_dir() == str(tmp_path / 'torch' / 'hub' / 'checkpoints')
    url = 'https://huggingface.co/RoyYang0714/AFA/resolve/main/nyud/afa_dla_up_dla34.ckpt'
    path = cache_path(url)
    assert osp.dirname(path) == default_cache_dir()
    assert osp.basename(path).endswith('-afa_dla_up_dla34.ckpt')
    # the same file name under another folder of the release is another cache entry
    other = cache_path(url.replace('/nyud/', '/bsds/'))
    assert osp.basename(other).endswith('-afa_dla_up_dla34.ckpt') and other != path
    assert cache_path(url, str(tmp_path / 'c')) == osp.join(str(tmp_path / 'c'),
                                                            osp.basename(path))


def test_google_drive_links_use_the_direct_download_address():
    direct = ('https://drive.usercontent.google.com/download?id=FILE_id-1&export=download'
              '&confirm=t')
    for link in ('https://drive.google.com/open?id=FILE_id-1',
                 'https://drive.google.com/file/d/FILE_id-1/view?usp=sharing'):
        assert direct_download_url(link) == direct
        assert osp.basename(cache_path(link, 'c')).endswith('-drive-FILE_id-1')
    hf = 'https://huggingface.co/RoyYang0714/AFA/resolve/main/bdd100k/afa_dla_up_ocr_ssr_dla169.ckpt'
    assert direct_download_url(hf) == hf


def test_download_shows_progress_and_checks_the_hash(checkpoint_server, tmp_path, capsys,
                                                     monkeypatch):
    monkeypatch.setattr(dl, 'PROGRESS_INTERVAL', {True: 0.0, False: 0.0})
    url = checkpoint_server.add('/w/model.pth', PAYLOAD)
    dst = tmp_path / 'cache' / 'model.pth'
    assert download(url, str(dst), DIGEST.upper(), chunk_size=1 << 18) == DIGEST
    assert dst.read_bytes() == PAYLOAD
    assert os.listdir(dst.parent) == ['model.pth']  # no temporary left
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f'downloading {url} (3.0 MiB) to {dst}'
    # a line per chunk as the bytes arrive (the interval is 0 here; 13 chunks), then the total
    assert len(err) == 1 + 13 + 1, err
    assert err[1].startswith('  0.2/3.0 MiB (8%), ')
    percents = [int(line.split('(')[1].split('%')[0]) for line in err[1:]]
    assert percents == sorted(percents) and percents[-2] == percents[-1] == 100
    assert err[-1].startswith('  3.0/3.0 MiB (100%), ') and err[-1].endswith(' s, done')
    assert download(url, str(tmp_path / 'quiet.pth'), progress=False) == DIGEST
    assert capsys.readouterr().err == ''


def test_wrong_hash_keeps_nothing(checkpoint_server, tmp_path):
    url = checkpoint_server.add('/w/model.pth', PAYLOAD)
    cache = tmp_path / 'cache'
    wrong = 'ab' * 32
    with pytest.raises(ChecksumError) as info:
        resolve_source(url, wrong, str(cache), progress=False)
    assert str(info.value) == (f'sha256 mismatch for {url}: expected {wrong}, got {DIGEST}; '
                               'the download was discarded (not cached)')
    assert isinstance(info.value, ConversionError)
    assert os.listdir(cache) == []  # neither the file nor its temporary
    # an existing cache entry is not replaced by a download that does not match
    path, digest = resolve_source(url, DIGEST, str(cache), progress=False)
    checkpoint_server.add('/w/model.pth', PAYLOAD[::-1])
    with pytest.raises(ChecksumError, match='expected ' + 'ab' * 32):
        resolve_source(url, wrong, str(cache), progress=False)
    assert os.listdir(cache) == [osp.basename(path)]
    with open(path, 'rb') as f:
        assert f.read() == PAYLOAD
    assert checkpoint_server.requests['/w/model.pth'] == 3


def test_cache_is_reused_and_a_bad_cached_file_is_downloaded_again(checkpoint_server, tmp_path,
                                                                   capsys):
    url = checkpoint_server.add('/w/model.pth', PAYLOAD)
    cache = str(tmp_path / 'cache')
    path, digest = resolve_source(url, None, cache)
    assert (path, digest) == (cache_path(url, cache), DIGEST)
    assert 'downloading' in capsys.readouterr().err
    # no hash given: the cached file is used as it is; a right hash: it is checked
    assert resolve_source(url, None, cache) == (path, None)
    assert resolve_source(url, DIGEST, cache) == (path, DIGEST)
    assert capsys.readouterr().err.count('using the cached download of ' + url) == 2
    assert checkpoint_server.requests['/w/model.pth'] == 1
    # a damaged cache entry no longer matches the hash: it is downloaded again
    with open(path, 'r+b') as f:
        f.write(b'\0')
    assert resolve_source(url, DIGEST, cache) == (path, DIGEST)
    assert 'downloading it again' in capsys.readouterr().err
    assert checkpoint_server.requests['/w/model.pth'] == 2
    with open(path, 'rb') as f:
        assert f.read() == PAYLOAD


def test_failed_downloads_keep_nothing(checkpoint_server, tmp_path, free_port):
    cache = tmp_path / 'cache'
    cases = {
        '/missing.pth': 'HTTP 404 Not Found',
        '/page.html': 'answered with an HTML page',
        '/text.pth': 'answered with an HTML page',
        '/short.pth': f'is incomplete: received {len(PAYLOAD)} of {len(PAYLOAD) + 10} bytes',
        '/empty.pth': 'is empty',
    }
    checkpoint_server.add('/page.html', b'<!DOCTYPE html><html>quota</html>',
                          content_type='text/html; charset=utf-8')
    checkpoint_server.add('/text.pth', b'  <html>login</html>')
    checkpoint_server.add('/short.pth', PAYLOAD, length=len(PAYLOAD) + 10)
    checkpoint_server.add('/empty.pth', b'')
    for path, message in cases.items():
        url = checkpoint_server.url(path)
        with pytest.raises(DownloadError, match=message) as info:
            resolve_source(url, None, str(cache), progress=False)
        assert url in str(info.value)
        assert not cache.exists() or os.listdir(cache) == [], path
    with pytest.raises(DownloadError, match='failed'):
        resolve_source(f'http://127.0.0.1:{free_port}/x.pth', None, str(cache), progress=False)
    with pytest.raises(DownloadError, match="url must start with http:// or https://, got 'x'"):
        download('x', str(tmp_path / 'x'))


def test_local_sources(tmp_path):
    src = tmp_path / 'model.pth'
    src.write_bytes(PAYLOAD)
    assert resolve_source(str(src)) == (str(src), None)
    assert resolve_source(str(src), DIGEST) == (str(src), DIGEST)
    with pytest.raises(ChecksumError) as info:
        resolve_source(str(src), '0' * 64)
    assert str(info.value) == f'sha256 mismatch for {src}: expected {"0" * 64}, got {DIGEST}'
    with pytest.raises(ConversionError, match='does not exist'):
        resolve_source(str(tmp_path / 'missing.pth'), DIGEST)
    with pytest.raises(ValueError, match='64 hexadecimal digits'):
        resolve_source(str(src), 'abc')
