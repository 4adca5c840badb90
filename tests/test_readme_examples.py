"""Every example command of README.md and docs/install.md, checked without
running it (README parsed now: it changes): the files it names exist, a
command as written parses with the tool's own argument parser (braces
expanded), a usage line's ``--flags`` exist in the tool's parser and the
runner knows what to fill its placeholders with, ``make`` targets exist, and
every repository path the documents mention (``configs/...``,
``tools/...``, ``docs/...``, ...) exists. ``tests/readme_examples.py`` runs
the README's commands end to end."""
import glob
import os.path as osp
import re

import pytest

import readme_examples as rx
from conftest import ROOT

DOCS = [d for d in rx.DOCS if osp.isfile(osp.join(ROOT, d))]
COMMANDS = [c for d in DOCS for c in rx.extract(d)]


def _ids(commands):
    return [f'{c.where} {c.text[:40]}' for c in commands]


def test_the_readme_has_commands():
    kinds = {c.kind for c in COMMANDS if c.doc == 'README.md'}
    assert {'make', 'python', 'bash'} <= kinds, kinds
    scripts = {c.script for c in COMMANDS}
    assert {'tools/train.py', 'tools/test.py', 'tools/make_splits.py',
            'tools/dist_train.sh'} <= scripts, scripts


TOOL_COMMANDS = [c for c in COMMANDS if c.kind in ('python', 'bash') or
                 (c.kind == 'console' and c.script)]


@pytest.mark.parametrize('cmd', TOOL_COMMANDS, ids=_ids(TOOL_COMMANDS))
def test_command_parses_with_its_tool(cmd, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # a parse writes nothing, anywhere
    scripts = rx.expand_braces(cmd.script)
    for script in scripts:
        assert osp.isfile(osp.join(ROOT, script)), \
            f'{cmd.where}: {script} does not exist'
    for token in cmd.args:
        for path in rx.expand_braces(token):
            if re.match(r'^(configs|tools)/', path):
                assert glob.glob(osp.join(ROOT, path)), \
                    f'{cmd.where}: {path} does not exist'
    if cmd.script.endswith('.sh'):
        return
    for script in scripts:
        if script.startswith('benchmarks/'):
            # not run in-process (a benchmark may not parse before working)
            src = open(osp.join(ROOT, script), encoding='utf-8').read()
            for flag in (t for t in cmd.args if t.startswith('--')):
                assert f"'{flag}'" in src or f'"{flag}"' in src, \
                    f'{cmd.where}: {script} has no option {flag}'
            continue
        if cmd.is_usage:
            _, parsers = _parsers(script, monkeypatch, capsys)
            known = rx.option_strings(parsers)
            flags = {t.strip('[]') for t in cmd.args
                     if t.strip('[]').startswith('--')}
            assert flags <= known, (f'{cmd.where}: {script} has no '
                                    f'option(s) {sorted(flags - known)}')
            assert cmd.doc != 'README.md' or script in rx.FILL, (
                f'{cmd.where}: tests/readme_examples.py FILL has no values '
                f'for the usage line {cmd.text!r}')
            continue
        args = [rx.expand_braces(t)[0] for t in cmd.args]
        try:
            rx.parse_with_tool(script, args)
        except SystemExit as e:
            if '--help' in args and e.code == 0:
                continue
            pytest.fail(f'{cmd.where}: {script} {" ".join(args)}: its '
                        f'parser refused it (exit {e.code}): '
                        f'{capsys.readouterr().err[-1000:]}')
    assert not list(tmp_path.iterdir())


def _parsers(script, monkeypatch, capsys):
    """The parsers of ``script`` (seen through its ``--help``)."""
    with pytest.raises(SystemExit) as e:
        rx.parse_with_tool(script, ['--help'])
    assert e.value.code == 0, f'{script} --help: exit {e.value.code}'
    capsys.readouterr()
    return None, e.value.parsers


def test_the_runner_fills_every_usage_line():
    for cmd in COMMANDS:
        if cmd.doc == 'README.md' and cmd.kind in ('python', 'bash'):
            for argv in rx.runnable(cmd):
                assert not any(rx.is_placeholder(a) for a in argv[2:]), \
                    (cmd.where, argv)


MAKE = [c for c in COMMANDS if c.kind == 'make']


@pytest.mark.parametrize('cmd', MAKE, ids=_ids(MAKE))
def test_make_targets_exist(cmd):
    targets = rx.make_targets()
    for target in cmd.args:
        assert target in targets, f'{cmd.where}: no make target {target!r}'


PATHS = sorted({(d, n, p) for d in DOCS for n, p in rx.mentioned_paths(d)})


def test_every_mentioned_path_exists():
    missing = [f'{d}:{n}: {p}' for d, n, p in PATHS
               if not glob.glob(osp.join(ROOT, p))
               and not osp.isdir(osp.join(ROOT, p.rstrip('/')))]
    assert not missing, 'paths the docs mention but the checkout lacks:\n' + \
        '\n'.join(missing)
    assert any(p.startswith('configs/') for _, _, p in PATHS)


def test_extraction_on_a_sample(tmp_path):
    """The extractor itself: blocks, continuations, comments, inline spans
    over two lines, braces, usage lines."""
    (tmp_path / 'X.md').write_text(
        '# t\n\n```bash\nmake demo   # a comment\n'
        'python tools/a.py --x 1 \\\n    --y 2\n```\n\n'
        'Run `python tools/b.py\n--out data` then `tools/c.py --k v`, '
        'see `tools/d.py`.\n\n```python\nx = 1\n```\n'
        '`python tools/e.py CONFIG [--n N]`\n')
    cmds = rx.extract('X.md', root=str(tmp_path))
    assert [c.argv for c in cmds] == [
        ['make', 'demo'], ['python', 'tools/a.py', '--x', '1', '--y', '2'],
        ['python', 'tools/b.py', '--out', 'data'],
        ['python', 'tools/c.py', '--k', 'v'],
        ['python', 'tools/e.py', 'CONFIG', '[--n', 'N]']]
    assert [c.line for c in cmds] == [4, 5, 9, 10, 15]
    assert [c.is_usage for c in cmds] == [False] * 4 + [True]
    assert rx.expand_braces('a_{x,y}_{1,2}.py') == [
        'a_x_1.py', 'a_x_2.py', 'a_y_1.py', 'a_y_2.py']
