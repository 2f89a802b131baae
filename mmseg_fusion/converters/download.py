"""Sources of the converters given as ``http(s)://`` URLs: download, cache, sha256 check.

``tools/model_converters/<source>2fusion.py SRC DST`` accept a URL as ``SRC``
(:func:`resolve_source`). A URL is downloaded once into the cache folder and read from there
by later runs. The cache folder is :func:`default_cache_dir`, where ``torch.hub`` keeps its
downloads: ``$TORCH_HOME/hub/checkpoints``, ``~/.cache/torch/hub/checkpoints`` by default;
``--cache-dir`` chooses another. A download is named ``<sha256 of the URL, 12 digits>-<file
name>`` (:func:`cache_path`), so that two URLs ending in the same file name (dla-afa's
``nyud/afa_dla_up_dla34.ckpt`` and ``bsds/afa_dla_up_dla34.ckpt``) never share a file.

The bytes stream into a temporary file beside the cached name through the package's atomic
writer (:class:`~mmseg_fusion.utils.atomic_io.AtomicFile`), and progress is printed to stderr
as they arrive. The file is moved into place only when it is complete and, when a sha256 is
given (``--sha256``), only when its hash matches. An interrupted, truncated or mismatching
download leaves nothing in the cache. A cached file that does not match a given sha256 is
downloaded again. A local ``SRC`` is checked against ``--sha256`` too.

Google Drive share links (``drive.google.com/open?id=ID``, ``drive.google.com/file/d/ID/...``)
are how the official CCNet and EMANet weights are published. They are fetched through Drive's
direct-download address (:func:`direct_download_url`). Any response that is an HTML page (a
share page, Drive's quota or virus-scan warning, a login page) is refused with an error, not
cached: download such a file in a browser and pass the local path.
"""
import hashlib
import http.client
import os
import os.path as osp
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import IO, Optional, Tuple

from ..engine.publish import sha256_file
from ..utils.atomic_io import AtomicFile
from ..version import __version__
from .common import ConversionError

__all__ = [
    'ChecksumError', 'DownloadError', 'cache_path', 'default_cache_dir', 'direct_download_url',
    'download', 'is_url', 'normalise_sha256', 'resolve_source', 'url_file_name'
]

#: the URL schemes a converter source may use
URL_SCHEMES = ('http://', 'https://')
#: seconds between two progress lines on a terminal (rewritten in place) and elsewhere (a log)
PROGRESS_INTERVAL = {True: 0.2, False: 2.0}

_SHA256 = re.compile(r'[0-9a-f]{64}')
_DRIVE_HOSTS = ('drive.google.com', 'docs.google.com')
_DRIVE_FILE_PATH = re.compile(r'/file/d/([A-Za-z0-9_-]+)')
_MIB = float(1 << 20)


class DownloadError(ConversionError):
    """A URL source could not be downloaded; nothing was cached or written."""


class ChecksumError(ConversionError):
    """A source's sha256 is not the expected one; nothing was cached or written."""


def is_url(src: str) -> bool:
    """Whether a converter source is an ``http(s)://`` URL (rather than a local path).

    Args:
        src (str): The ``SRC`` argument.

    Returns:
        bool: True for ``http://...`` and ``https://...`` (any case of the scheme).
    """
    return src.lower().startswith(URL_SCHEMES)


def normalise_sha256(value: str) -> str:
    """Check a sha256 given by the user and return it in lower case.

    Args:
        value (str): 64 hexadecimal digits (either case, surrounding blanks ignored).

    Returns:
        str: The digest in lower case.

    Raises:
        ValueError: If ``value`` is not 64 hexadecimal digits.
    """
    digest = str(value).strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValueError(f'sha256 must be 64 hexadecimal digits, got {value!r} '
                         f'({len(str(value))} characters)')
    return digest


def default_cache_dir() -> str:
    """The folder downloads are cached in: ``torch.hub``'s, ``$TORCH_HOME/hub/checkpoints``.

    Returns:
        str: ``<torch.hub.get_dir()>/checkpoints`` (``~/.cache/torch/hub/checkpoints`` unless
        ``TORCH_HOME`` or ``XDG_CACHE_HOME`` says otherwise).
    """
    import torch.hub

    return osp.join(torch.hub.get_dir(), 'checkpoints')


def _drive_file_id(url: str) -> Optional[str]:
    """The file id of a Google Drive link, or None for other URLs."""
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in _DRIVE_HOSTS:
        return None
    match = _DRIVE_FILE_PATH.search(parts.path)
    if match:
        return match.group(1)
    ids = urllib.parse.parse_qs(parts.query).get('id')
    return ids[0] if ids else None


def direct_download_url(url: str) -> str:
    """The address that serves the file of ``url`` itself.

    Google Drive share links (``https://drive.google.com/open?id=ID``,
    ``https://drive.google.com/file/d/ID/view?usp=sharing``) serve an HTML page; their file is
    at ``https://drive.usercontent.google.com/download?id=ID&export=download&confirm=t``.
    Other URLs are returned unchanged.

    Args:
        url (str): The URL given as ``SRC``.

    Returns:
        str: The URL to request.
    """
    file_id = _drive_file_id(url)
    if file_id is None:
        return url
    query = urllib.parse.urlencode(dict(id=file_id, export='download', confirm='t'))
    return f'https://drive.usercontent.google.com/download?{query}'


def url_file_name(url: str) -> str:
    """A file name for what ``url`` serves.

    Args:
        url (str): An ``http(s)://`` URL.

    Returns:
        str: The last part of its path (characters other than letters, digits, ``._-``
        replaced by ``_``), ``drive-<id>`` for a Google Drive link, or ``download``.
    """
    file_id = _drive_file_id(url)
    if file_id is not None:
        return f'drive-{file_id}'
    name = osp.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    name = re.sub(r'[^A-Za-z0-9._-]', '_', name).lstrip('.')
    return name or 'download'


def cache_path(url: str, cache_dir: Optional[str] = None) -> str:
    """Where the download of ``url`` is cached.

    Args:
        url (str): The URL given as ``SRC``.
        cache_dir (str, optional): The cache folder. Defaults to None
            (:func:`default_cache_dir`).

    Returns:
        str: ``<cache_dir>/<first 12 hex digits of sha256(url)>-<file name>``.
    """
    folder = default_cache_dir() if cache_dir is None else os.fspath(cache_dir)
    key = hashlib.sha256(url.encode('utf-8')).hexdigest()[:12]
    return osp.join(folder, f'{key}-{url_file_name(url)}')


class _Progress:
    """Bytes received so far, printed to ``stream`` while a download runs.

    On a terminal the line is rewritten in place (carriage return); elsewhere (a log file, a
    test's captured stderr) a new line is printed every :data:`PROGRESS_INTERVAL` seconds.
    Every line is flushed at once.
    """

    def __init__(self, url: str, path: str, total: Optional[int], stream: IO[str]) -> None:
        self.total = total
        self.stream = stream
        self.tty = bool(getattr(stream, 'isatty', lambda: False)())
        self.interval = PROGRESS_INTERVAL[self.tty]
        self.start = self.last = time.monotonic()
        size = 'unknown size' if total is None else f'{total / _MIB:.1f} MiB'
        self._write(f'downloading {url} ({size}) to {path}\n')

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _line(self, received: int) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        done = f'{received / _MIB:.1f}'
        if self.total:
            done += f'/{self.total / _MIB:.1f} MiB ({100 * received // self.total}%)'
        else:
            done += ' MiB'
        return f'  {done}, {received / _MIB / elapsed:.1f} MiB/s'

    def update(self, received: int) -> None:
        """Show ``received`` bytes if the last line is older than the interval."""
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._write(('\r' + self._line(received)) if self.tty
                        else self._line(received) + '\n')

    def close(self, received: int) -> None:
        """Show the final count and the time taken."""
        line = f'{self._line(received)} in {time.monotonic() - self.start:.1f} s, done'
        self._write(('\r' + line + '\n') if self.tty else line + '\n')


def _is_html(content_type: str, head: bytes) -> bool:
    """Whether a response is a web page rather than a file."""
    media = content_type.split(';', 1)[0].strip().lower()
    return media in ('text/html', 'application/xhtml+xml') or head.lstrip()[:1] == b'<'


def download(url: str, path: str, sha256: Optional[str] = None, progress: bool = True,
             timeout: float = 60.0, chunk_size: int = 1 << 20) -> str:
    """Download ``url`` to ``path`` atomically, checking its size and its sha256.

    The bytes go to a temporary file beside ``path`` (:class:`AtomicFile`), which replaces
    ``path`` only if the transfer is complete (as long as ``Content-Length`` says), the
    response is not an HTML page and, when ``sha256`` is given, the hash matches. Otherwise
    the temporary file is removed and ``path`` is left as it was.

    Args:
        url (str): An ``http(s)://`` URL (Google Drive share links are fetched through
            :func:`direct_download_url`).
        path (str): The file to write (its folder is created if needed).
        sha256 (str, optional): Expected sha256 (64 hex digits). Defaults to None (not
            checked).
        progress (bool): Print progress to stderr as the bytes arrive. Defaults to True.
        timeout (float): Seconds to wait for the server on each blocking operation.
            Defaults to 60.
        chunk_size (int): Bytes read at a time. Defaults to 1 MiB.

    Returns:
        str: The sha256 of the file written (64 hex digits).

    Raises:
        DownloadError: If the server cannot be reached, answers with an HTTP error or an
            HTML page, or the transfer breaks off.
        ChecksumError: If ``sha256`` is given and the download's hash differs.
    """
    if not is_url(url):
        raise DownloadError(f'download: url must start with http:// or https://, got {url!r}')
    expected = None if sha256 is None else normalise_sha256(sha256)
    request = urllib.request.Request(direct_download_url(url), headers={
        'User-Agent': f'mmseg_fusion/{__version__} (checkpoint converter)'})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        raise DownloadError(f'download of {url} failed: HTTP {err.code} {err.reason}') from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, 'reason', err)
        raise DownloadError(f'download of {url} failed: {reason}') from None
    with response:
        length = response.headers.get('Content-Length')
        total = int(length) if length is not None and length.isdigit() else None
        content_type = response.headers.get('Content-Type', '')
        digest = hashlib.sha256()
        received = 0
        bar = _Progress(url, path, total, sys.stderr) if progress else None
        with AtomicFile(path, overwrite=True, make_folder=True) as out:
            f = out.open()
            while True:
                try:
                    chunk = response.read(chunk_size)
                except (OSError, http.client.HTTPException) as err:
                    raise DownloadError(f'download of {url} broke off after {received} bytes: '
                                        f'{type(err).__name__}: {err}') from None
                if not chunk:
                    break
                if received == 0 and _is_html(content_type, chunk[:512]):
                    raise DownloadError(
                        f'{url} answered with an HTML page (Content-Type {content_type!r}), '
                        'not a checkpoint: a share page, a quota or virus-scan warning or a '
                        'login page. Download the file in a browser and pass its local path')
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(received)
            if total is not None and received != total:
                raise DownloadError(f'download of {url} is incomplete: received {received} of '
                                    f'{total} bytes (Content-Length)')
            if received == 0:
                raise DownloadError(f'download of {url} is empty (0 bytes)')
            actual = digest.hexdigest()
            if expected is not None and actual != expected:
                raise ChecksumError(
                    f'sha256 mismatch for {url}: expected {expected}, got {actual}; the '
                    'download was discarded (not cached)')
        if bar is not None:
            bar.close(received)
    return actual


def resolve_source(src: str, sha256: Optional[str] = None, cache_dir: Optional[str] = None,
                   progress: bool = True) -> Tuple[str, Optional[str]]:
    """The local file of a converter source, downloaded and cached if ``src`` is a URL.

    Args:
        src (str): A local path or an ``http(s)://`` URL.
        sha256 (str, optional): Expected sha256 of the file (64 hex digits). Defaults to
            None (not checked).
        cache_dir (str, optional): Cache folder of URL sources. Defaults to None
            (:func:`default_cache_dir`).
        progress (bool): Print what happens (download progress, cache hits) to stderr.
            Defaults to True.

    Returns:
        tuple[str, str | None]: The local file and its sha256 where it was computed on the
        way (None otherwise).

    Raises:
        ChecksumError: If ``sha256`` is given and the file's hash differs (a local file, or
            the fresh download of a URL; a cached file that differs is downloaded again).
        DownloadError: If a URL cannot be downloaded.
        ConversionError: If a local ``src`` does not exist.
    """
    expected = None if sha256 is None else normalise_sha256(sha256)
    if not is_url(src):
        if not osp.isfile(src):
            raise ConversionError(f'source checkpoint {src!r} does not exist')
        if expected is None:
            return src, None
        actual = sha256_file(src)
        if actual != expected:
            raise ChecksumError(f'sha256 mismatch for {src}: expected {expected}, got {actual}')
        return src, actual
    path = cache_path(src, cache_dir)
    if osp.isfile(path):
        actual = None if expected is None else sha256_file(path)
        if actual == expected:
            if progress:
                print(f'using the cached download of {src}: {path}', file=sys.stderr,
                      flush=True)
            return path, actual
        if progress:
            print(f'the cached file {path} has sha256 {actual}, not {expected}; downloading '
                  'it again', file=sys.stderr, flush=True)
    return path, download(src, path, expected, progress=progress)
