"""The docs name what exists and run what the scripts accept.

Documents: ``README.md``, ``CONTRIBUTING.md``, ``benchmarks/README.md`` and every
``configs/*/README.md``, read when the test runs (whatever they say then).

Paths: every ``configs/...``, ``tools/...``, ``benchmarks/...`` and ``scripts/...`` path named
anywhere in a document (prose, tables, code) exists in the repository, and so does the target of
every relative Markdown link (resolved from the document's folder). A path written after ``/``,
``.`` or a word character is someone else's (``mmseg/.mim/tools/test.py``, a URL) and is left
out. ``<placeholder>`` parts and ``*`` are globs that must match something
(``configs/<method>/README.md``).

Options: every ``--option`` of a documented command line must be accepted by the script that
runs it. Command lines are the lines of fenced code blocks (all but ``python``, ``yaml``,
``json`` and ``text`` blocks; ``\\`` continuations joined, ``#`` comments dropped) and the
inline code spans that start with ``python``, ``bash``, ``torchrun`` (after any ``VAR=value``)
or with a script path followed by arguments (a bare path names a file). In each command
(split at ``;``, ``|`` and ``&&``), the script is the first ``tools/``, ``benchmarks/`` or
``scripts/`` ``.py``/``.sh`` path after the launcher, and its options are the ``--xxx`` words
after it, up to a bare ``--`` (what follows that is handed on to another program). A script
whose parser cannot be read is an error where a command gives it options.

* A Python script's parser is taken without running the script: in one fresh interpreter for
  all of them (so that no script changes this process), each script runs as ``__main__``
  (``runpy``) with ``argparse.ArgumentParser.parse_args``/``parse_known_args`` replaced by a
  function that raises with the parser, so nothing after argument parsing runs.
  That works for ``parse_args()`` reading ``sys.argv``, for ``parse_args(argv)`` functions and
  for the converters' shared ``converter_main``. The option must be one of the parser's option
  strings (``parser._option_string_actions``), spelled in full: argparse would accept an
  unambiguous abbreviation, the docs should not rely on it.
* A shell script accepts an option that its own text names, or one that the parser of a Python
  script accepts to which it hands on its arguments (a line that names a ``.py`` file and
  ``"$@"``/``"${@:N}"``, e.g. ``tools/dist_train.sh`` -> ``tools/train.py``).

The number of paths, commands and options checked is asserted, so that a change of the
extraction cannot make the test pass on nothing.
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: the documents, relative to the repository
DOCS: List[str] = ['README.md', 'CONTRIBUTING.md', 'benchmarks/README.md'] + sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*', 'README.md')))

TOP = r'(?:configs|tools|benchmarks|scripts)'
#: a path of ours: not preceded by a character that makes it part of another path or word
PATH = re.compile(r'(?<![\w./$-])(' + TOP + r'/[\w.*<>/-]*)')
#: a relative Markdown link target (images too): ``](target)`` or ``](target#anchor)``
LINK = re.compile(r'\]\((?!https?:|mailto:|#)([^)\s#]+)(?:#[^)\s]*)?\)')
#: a script that a command runs
SCRIPT = re.compile(r'^(?:\./)?((?:tools|benchmarks|scripts)/[\w./-]+\.(?:py|sh))$')
OPTION = re.compile(r'(?<![\w-])(--[A-Za-z][\w-]*)')
LAUNCHERS = ('python', 'python3', 'bash', 'sh', 'torchrun')
NO_COMMAND_FENCES = ('python', 'py', 'yaml', 'yml', 'json', 'text', 'txt')


def read(doc: str) -> str:
    with open(osp.join(ROOT, doc), encoding='utf-8') as f:
        return f.read()


# ----------------------------------------------------------------------------------- paths
def named_paths(doc: str, text: str) -> Iterator[Tuple[int, str, str]]:
    """``(line, as written, path relative to the repository)`` of every path a doc names."""
    folder = osp.dirname(doc)
    for number, line in enumerate(text.splitlines(), 1):
        for match in PATH.finditer(line):
            written = match.group(1).rstrip('.')
            yield number, written, written
        for match in LINK.finditer(line):
            target = match.group(1)
            yield number, target, osp.normpath(osp.join(folder, target))


def path_exists(path: str) -> bool:
    """Whether ``path`` (relative to the repository; ``<x>`` and ``*`` as globs) exists."""
    pattern = re.sub(r'<[^>/]*>', '*', path)
    if '*' in pattern:
        return bool(glob.glob(osp.join(ROOT, pattern)))
    return osp.exists(osp.join(ROOT, pattern))


# -------------------------------------------------------------------------------- commands
def command_lines(text: str) -> Iterator[Tuple[int, str]]:
    """``(line, command)`` of fenced shell lines and of inline code that runs a script."""
    outside: List[str] = []  # the text without its fenced blocks (line count kept)
    fence: Optional[str] = None
    pending, start = '', 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith('```'):
            fence = stripped[3:].strip().lower() if fence is None else None
            outside.append('')
            continue
        if fence is None:
            outside.append(line)
            continue
        outside.append('')
        if fence in NO_COMMAND_FENCES:
            continue
        if not pending:
            start = number
        if stripped.endswith('\\'):
            pending += stripped[:-1] + ' '
            continue
        yield start, pending + stripped
        pending = ''
    prose = '\n'.join(outside)
    # a code span may go on over one line break, as Markdown allows inside a paragraph
    for match in re.finditer(r'(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)', prose):
        code = ' '.join(match.group(1).split())
        words = code.split()
        words = words[_leading_assignments(words):]
        # a bare path (`tools/train.py`) names a file; with arguments it is a command
        if words and (osp.basename(words[0]) in LAUNCHERS
                      or (SCRIPT.match(words[0]) and len(words) > 1)):
            yield prose.count('\n', 0, match.start()) + 1, code


def _leading_assignments(words: List[str]) -> int:
    """How many ``VAR=value`` words start a command."""
    return next((i for i, w in enumerate(words) if not re.match(r'^\w+=', w)), len(words))


def invocations(command: str) -> Iterator[Tuple[str, List[str]]]:
    """``(script, options)`` run by a command line (see the module docstring)."""
    command = re.sub(r'(^|\s)#.*$', '', command)
    for segment in re.split(r'&&|\|\||[;|]', command):
        words = segment.split()
        words = [w.lstrip('<($"\'') for w in words[_leading_assignments(words):]]
        if not words:
            continue
        if SCRIPT.match(words[0]):
            index = 0
        elif osp.basename(words[0]) in LAUNCHERS:
            index = next((i for i, w in enumerate(words[1:], 1)
                          if SCRIPT.match(w) or w in ('-c', '-m')), None)
            if index is None or not SCRIPT.match(words[index]):
                continue
        else:
            continue
        options = []
        for word in words[index + 1:]:
            if word == '--':
                break
            if word.lstrip('[("\'').startswith('--'):
                options += OPTION.findall(word)[:1]
        yield SCRIPT.match(words[index]).group(1), options


#: run in a fresh interpreter with the scripts (relative to the repository) as arguments:
#: prints ``{script: [option strings]}`` or ``{script: "error"}`` as JSON
CAPTURE = r"""
import argparse, json, os.path as osp, runpy, sys
from unittest import mock


class Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def capture(self, *args, **kwargs):
    raise Captured(self)


found = {}
for script in sys.argv[1:]:
    path = osp.abspath(script)
    try:
        with mock.patch.object(argparse.ArgumentParser, 'parse_args', capture), \
                mock.patch.object(argparse.ArgumentParser, 'parse_known_args', capture), \
                mock.patch.object(sys, 'argv', [path]), \
                mock.patch.object(sys, 'path', [osp.dirname(path)] + sys.path[1:]):
            runpy.run_path(path, run_name='__main__')
        found[script] = 'returned without parsing arguments'
    except Captured as captured:
        found[script] = sorted(captured.parser._option_string_actions)
    except BaseException as err:  # SystemExit included: the script stopped before parsing
        found[script] = f'{type(err).__name__}: {err}'
print('OPTIONS ' + json.dumps(found))
"""


def python_options(scripts: Iterable[str]) -> Dict[str, Union[Set[str], str]]:
    """Option strings of the parsers of Python scripts (relative to the repository), read in
    one fresh interpreter; an error message for a script whose parser could not be read."""
    scripts = sorted(set(scripts))
    if not scripts:
        return {}
    env = dict(os.environ, MMSEG_FUSION_SKIP_VERSION_CHECK='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, '-c', CAPTURE, *scripts], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    line = [x for x in proc.stdout.splitlines() if x.startswith('OPTIONS ')]
    assert proc.returncode == 0 and line, f'reading the parsers failed:\n{proc.stderr[-4000:]}'
    found = json.loads(line[-1][len('OPTIONS '):])
    return {k: set(v) if isinstance(v, list) else v for k, v in found.items()}


def shell_options(script: str) -> Tuple[Set[str], List[str]]:
    """``(options named in a shell script's text, the Python scripts it hands "$@" on to)``."""
    path = osp.join(ROOT, script)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    forwarded = []
    for line in text.replace('\\\n', ' ').splitlines():
        if '"$@"' not in line and '"${@' not in line:
            continue
        for prefix, rel in re.findall(r'(\$\{?HERE\}?/|\$\{?ROOT\}?/)?((?:[\w.-]+/)*[\w-]+\.py)',
                                      line):
            # $HERE: the script's folder; $ROOT or nothing: the repository (the scripts cd there)
            here = osp.normpath(osp.join(osp.dirname(script), rel))
            candidates = {'$': [here] if 'HERE' in prefix else [rel]}.get(prefix[:1], [rel, here])
            forwarded += [c for c in candidates if osp.isfile(osp.join(ROOT, c))][:1]
    return set(OPTION.findall(text)), forwarded


def accepted_options(scripts: Iterable[str]) -> Dict[str, Union[Set[str], str]]:
    """``script -> accepted options`` (or an error message) of ``.py`` and ``.sh`` scripts."""
    scripts = sorted(set(scripts))
    shells = {s: shell_options(s) for s in scripts if s.endswith('.sh')}
    parsers = python_options([s for s in scripts if s.endswith('.py')]
                             + [f for _, forwarded in shells.values() for f in forwarded])
    accepted: Dict[str, Union[Set[str], str]] = {
        s: parsers[s] for s in scripts if s.endswith('.py')}
    for script, (own, forwarded) in shells.items():
        accepted[script] = set(own)
        for target in forwarded:
            if isinstance(parsers[target], str):
                accepted[script] = f'{target}: {parsers[target]}'
                break
            accepted[script] |= parsers[target]
    return accepted


# ----------------------------------------------------------------------------------- tests
def test_documents_exist():
    assert len(DOCS) >= 3 + 6, DOCS
    for doc in DOCS:
        assert osp.isfile(osp.join(ROOT, doc)), doc


def test_named_paths_exist():
    checked, missing = 0, []
    for doc in DOCS:
        if not osp.isfile(osp.join(ROOT, doc)):
            continue  # test_documents_exist says so
        for number, written, path in named_paths(doc, read(doc)):
            checked += 1
            if not path_exists(path):
                missing.append(f'{doc}:{number}: {written}')
    assert checked > 100, checked
    assert not missing, f'{len(missing)} of {checked} paths named in the docs do not exist:\n' \
                        + '\n'.join(missing)


def documented_invocations() -> List[Tuple[str, int, str, str, List[str]]]:
    """``(doc, line, command, script, options)`` of every script a document runs."""
    found = []
    for doc in DOCS:
        if not osp.isfile(osp.join(ROOT, doc)):
            continue  # test_documents_exist says so
        for number, command in command_lines(read(doc)):
            for script, used in invocations(command):
                found.append((doc, number, command, script, used))
    return found


def test_documented_options_are_accepted():
    found = [f for f in documented_invocations() if osp.isfile(osp.join(ROOT, f[3]))]
    # (a missing script: test_named_paths_exist says so)
    accepted = accepted_options(f[3] for f in found)
    options, wrong = 0, []
    for doc, number, command, script, used in found:
        if used and isinstance(accepted[script], str):
            wrong.append(f'{doc}:{number}: the parser of {script} could not be read: '
                         f'{accepted[script]}')
            continue
        for option in used:
            options += 1
            if option not in accepted[script]:
                wrong.append(f'{doc}:{number}: {script} does not accept {option} '
                             f'(in: {command})')
    assert len(found) > 20 and options > 30, (len(found), options)
    assert not wrong, f'{len(wrong)} problems in {len(found)} documented commands ' \
                      f'({options} options):\n' + '\n'.join(wrong)


# ----------------------------------------------- the extraction itself (so that it can fail)
SAMPLE = """# Doc

Train with `python tools/train.py CONFIG --work-dir W` or see
[the ssr README](configs/ssr/README.md#usage).
Not ours: mmseg/.mim/tools/test.py and https://example.org/tools/nothing.py.
A gone path: tools/analysis/no_such_tool.py. A file, no command: `benchmarks/harness.py`;
a command without launcher: `tools/model_converters/ccnet2fusion.py SRC DST --force`.

```bash
GPUS=2 bash tools/dist_train.sh CONFIG 2 --resume   # handed on to tools/train.py
python tools/deployment/pytorch2onnx.py CONFIG CKPT OUT.onnx \\
    [--shape H W] [--no-such-flag]
bash scripts/test.sh -- -k ssr --maxfail 1
```

```python
cfg = 'configs/<method>/README.md'  # python blocks: paths yes, commands no --not-an-option
```
"""


def test_extraction_finds_paths_and_commands():
    paths = list(named_paths('README.md', SAMPLE))
    written = [w for _, w, _ in paths]
    assert 'tools/train.py' in written and 'configs/ssr/README.md' in written
    assert 'tools/analysis/no_such_tool.py' in written and 'benchmarks/harness.py' in written
    assert not any('nothing.py' in w or w == 'tools/test.py' for w in written), written
    missing = [w for _, w, p in paths if not path_exists(p)]
    assert missing == ['tools/analysis/no_such_tool.py'], missing
    assert path_exists('configs/<method>/README.md') and not path_exists('configs/<m>/x.md')

    found = sorted((number, script, used) for number, command in command_lines(SAMPLE)
                   for script, used in invocations(command))
    assert found == [
        (3, 'tools/train.py', ['--work-dir']),
        (7, 'tools/model_converters/ccnet2fusion.py', ['--force']),
        (10, 'tools/dist_train.sh', ['--resume']),
        (11, 'tools/deployment/pytorch2onnx.py', ['--shape', '--no-such-flag']),
        (13, 'scripts/test.sh', []),
    ], found


def test_parsers_are_read_without_running_the_scripts():
    accepted = accepted_options([
        'tools/train.py', 'tools/deployment/pytorch2onnx.py',
        'tools/model_converters/ccnet2fusion.py', 'tools/dist_train.sh', 'tools/dist_test.sh',
        'scripts/bootstrap.sh', 'scripts/test.sh'])
    assert {'--work-dir', '--resume', '--cfg-options', '--launcher'} <= accepted[
        'tools/train.py']
    assert '--no-such-flag' not in accepted['tools/deployment/pytorch2onnx.py']
    # converters build their parser in converter_main, under `if __name__ == '__main__'`
    assert {'--force', '--config', '--cfg-options'} <= accepted[
        'tools/model_converters/ccnet2fusion.py']
    # dist_train.sh hands its arguments on to train.py; bootstrap.sh names its own
    assert '--resume' in accepted['tools/dist_train.sh']
    assert '--tta' in accepted['tools/dist_test.sh'] and '--resume' not in accepted[
        'tools/dist_test.sh']
    assert '--check-torch' in accepted['scripts/bootstrap.sh']
    assert '--resume' not in accepted['scripts/bootstrap.sh']
    # the sample's one wrong option is found (what pytest gets after `--` is not checked)
    wrong = [option for _, command in command_lines(SAMPLE)
             for script, used in invocations(command) for option in used
             if option not in accepted[script]]
    assert wrong == ['--no-such-flag'], wrong


def test_an_unreadable_parser_is_reported(tmp_path):
    stops, returns = str(tmp_path / 'stops.py'), str(tmp_path / 'returns.py')
    with open(stops, 'w') as f:
        f.write("raise SystemExit('stops before parsing')\n")
    with open(returns, 'w') as f:
        f.write('import argparse\nparser = argparse.ArgumentParser()\n')
    assert python_options([stops, returns]) == {
        stops: 'SystemExit: stops before parsing', returns: 'returned without parsing arguments'}
