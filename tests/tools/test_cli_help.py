"""``--help`` of every Python tool under tools/ (found by glob, so a new tool
is covered without editing this file): exit status 0 within a time limit,
a usage message, no file written (in the working directory, a temporary
folder, nor in the checkout), a description that is not cut mid-sentence,
and every option with help text that shows its default.

The tools run in this process, as ``python tools/X.py --help`` would run
them (``runpy`` as ``__main__``, ``sys.argv`` set, the tool's folder first
on ``sys.path``): a subprocess per tool would import torch and mmdet 20
times (3-6 s each). The parsers are captured from
``ArgumentParser.parse_known_args``; a tool with sub-commands is asked
``SUB --help`` for each of them too. Two tools also run in subprocesses, as
a user types them.
"""
import argparse
import ast
import glob
import os
import os.path as osp
import runpy
import signal
import subprocess
import sys

import pytest

from conftest import ROOT

TOOLS_DIR = osp.join(ROOT, 'tools')
TOOLS = sorted(osp.relpath(p, TOOLS_DIR) for p in
               glob.glob(osp.join(TOOLS_DIR, '**', '*.py'), recursive=True)
               if '__pycache__' not in p
               and not osp.basename(p).startswith('_'))
TIME_LIMIT = 60  # seconds per --help (imports included; a loaded machine)
#: where a tool's --help must not write (besides the temporary cwd)
WATCHED = ('', 'configs', 'tools', 'data', 'work_dirs', 'outputs', 'docs')


class _Timeout(Exception):
    pass


def _snapshot(root: str, subdirs=('', )) -> dict:
    """``{path: (size, mtime_ns)}`` of the files under ``root/subdir``
    (``''``: the top level only)."""
    files = {}
    for sub in subdirs:
        top = osp.join(root, sub)
        if not osp.isdir(top):
            continue
        if sub == '':
            for name in os.listdir(top):
                p = osp.join(top, name)
                if osp.isfile(p):
                    st = os.stat(p)
                    files[p] = (st.st_size, st.st_mtime_ns)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != '__pycache__']
            files[dirpath] = None  # a new folder counts too
            for fn in filenames:
                p = osp.join(dirpath, fn)
                try:
                    st = os.stat(p)
                except FileNotFoundError:
                    continue
                files[p] = (st.st_size, st.st_mtime_ns)
    return files


def _changed(before: dict, after: dict) -> list:
    return sorted(p for p in after if p not in before or
                  (after[p] is not None and before[p] != after[p]))


def _all_parsers(parser: argparse.ArgumentParser, name: str = ''):
    """``(command, parser)`` of ``parser`` and its sub-commands."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _all_parsers(subparser, f'{name} {sub}'.strip())


def run_help(tool: str, args, monkeypatch, capsys, cwd):
    """Run ``tools/<tool> *args --help`` here; ``(exit code, stdout,
    parsers)``."""
    path = osp.join(TOOLS_DIR, tool)
    parsers = []
    original = argparse.ArgumentParser.parse_known_args

    def spy(self, *a, **kw):
        parsers.append(self)
        return original(self, *a, **kw)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', spy)
    monkeypatch.setattr(sys, 'argv', [path, *args, '--help'])
    # as a fresh `python tools/X.py`: the script's folder first, not the
    # checkout folders conftest added
    monkeypatch.setattr(sys, 'path', [osp.dirname(path)] + [
        p for p in sys.path if osp.abspath(p or '.') not in
        (ROOT, TOOLS_DIR)])
    monkeypatch.chdir(cwd)

    def alarm(signum, frame):
        raise _Timeout(f'{tool} --help ran for more than {TIME_LIMIT} s')

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIME_LIMIT)
    code = 'returned without exiting'
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as e:
        code = e.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    out = capsys.readouterr().out
    return code, out, parsers


def _doc_first_paragraph(path: str) -> str:
    with open(path, encoding='utf-8') as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ''
    return ' '.join(doc.strip().split('\n\n')[0].split())


def check_parser(command: str, parser, doc: str) -> list:
    """What is wrong with one parser: options without help, defaults not
    shown, a description missing or cut mid-sentence."""
    problems = []
    description = ' '.join((parser.description or '').split())
    if not description:
        problems.append(f'{command}: no description')
    first = ' '.join((parser.description or '').strip()
                     .split('\n\n')[0].split())
    if (first and doc != first and doc.startswith(first)
            and not first.endswith(('.', ':', '?', '!', ')'))):
        problems.append(f'{command}: description cut mid-sentence: '
                        f'{first!r} (the docstring goes on: {doc!r})')
    shows_defaults = issubclass(parser.formatter_class,
                                argparse.ArgumentDefaultsHelpFormatter)
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                               argparse._SubParsersAction)):
            continue
        name = '/'.join(action.option_strings) or action.dest
        if action.help == argparse.SUPPRESS:
            continue  # hidden on purpose (e.g. --local_rank of torchrun)
        if not (action.help or '').strip():
            problems.append(f'{command}: {name} has no help text')
            continue
        flag_like = isinstance(action, (
            argparse._StoreTrueAction, argparse._StoreFalseAction,
            argparse._StoreConstAction, argparse._CountAction))
        if (not shows_defaults and not flag_like
                and action.default not in (None, argparse.SUPPRESS)
                and '%(default)' not in action.help
                and 'default' not in action.help.lower()):
            problems.append(f'{command}: {name} (default '
                            f'{action.default!r}) does not show its default')
    return problems


@pytest.mark.parametrize('tool', TOOLS)
def test_help_is_harmless_and_complete(tool, monkeypatch, capsys, tmp_path):
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    before_root = _snapshot(ROOT, WATCHED)
    code, out, parsers = run_help(tool, [], monkeypatch, capsys, cwd)
    assert code == 0, f'{tool} --help: exit status {code!r}\n{out[-2000:]}'
    assert 'usage:' in out, f'{tool} --help printed no usage:\n{out[-2000:]}'
    assert parsers, f'{tool}: no argparse parser seen'
    top = parsers[0]
    outputs = {'': out}
    for command, parser in list(_all_parsers(top))[1:]:
        sub_code, sub_out, _ = run_help(tool, command.split(), monkeypatch,
                                        capsys, cwd)
        assert sub_code == 0, f'{tool} {command} --help: {sub_code!r}'
        assert 'usage:' in sub_out, sub_out[-2000:]
        outputs[command] = sub_out
    assert sorted(os.listdir(cwd)) == [], (
        f'{tool} --help wrote {os.listdir(cwd)} in the working directory')
    written = _changed(before_root, _snapshot(ROOT, WATCHED))
    assert not written, f'{tool} --help wrote in the checkout: {written}'
    doc = _doc_first_paragraph(osp.join(TOOLS_DIR, tool))
    problems = [p for command, parser in _all_parsers(top)
                for p in check_parser(f'{tool} {command}'.strip(), parser,
                                      doc)]
    assert not problems, '\n'.join(problems)


def test_help_in_a_subprocess(tmp_path):
    """As typed: ``python tools/train.py --help`` (and one data tool), from
    another folder, at once."""
    cmds = [[sys.executable, osp.join(TOOLS_DIR, t), '--help']
            for t in ('train.py', 'make_splits.py')]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONPATH', None)
    procs = [subprocess.Popen(c, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for c in cmds]
    for cmd, p in zip(cmds, procs):
        out, err = p.communicate(timeout=TIME_LIMIT * 2)
        assert p.returncode == 0, (cmd, err[-2000:])
        assert out.startswith('usage: '), out[:500]
    assert os.listdir(tmp_path) == []


def test_every_tool_is_found():
    names = {osp.basename(t) for t in TOOLS}
    assert {'train.py', 'test.py', 'image_demo.py', 'make_splits.py',
            'tide_analysis.py'} <= names
    assert any(t.startswith('analysis_tools' + os.sep) for t in TOOLS)


def test_bombo_cli_runs_the_tools(capsys, monkeypatch, tmp_path):
    """bombo/cli.py (the console scripts and ``python -m bombo``): tool
    names, ``-`` for ``_``, exit codes passed on, ``sys.argv`` restored."""
    from bombo import cli
    monkeypatch.chdir(tmp_path)
    assert osp.realpath(cli.tools_dir()) == osp.realpath(TOOLS_DIR)
    tools = cli.available_tools()
    for tool in TOOLS:
        name = osp.splitext(tool)[0].replace(os.sep, '/')
        assert osp.realpath(tools[name]) == osp.realpath(
            osp.join(TOOLS_DIR, tool)), name
    assert tools['tide_analysis'] == tools['analysis_tools/tide_analysis']
    assert cli.find_tool('image-demo').endswith('image_demo.py')
    with pytest.raises(SystemExit, match="no tool 'nope'"):
        cli.find_tool('nope')
    argv = list(sys.argv)
    assert cli.run_tool('make_splits', ['voc', '--help']) == 0
    assert 'usage: ' in capsys.readouterr().out
    assert cli.run_tool('make_splits', ['voc', '--no-such-flag']) == 2
    assert 'unrecognized arguments' in capsys.readouterr().err
    assert sys.argv == argv
    assert cli.main(['list']) == 0
    out = capsys.readouterr().out
    assert 'make_pseudo_masks' in out and 'bombo-train' in out
    assert cli.main([]) == 2  # no tool: the list, and a usage error
    assert cli.main(['--version']) == 0
    import bombo
    assert capsys.readouterr().out.strip().endswith(bombo.__version__)
    for script, tool in cli.ENTRY_POINTS.items():
        assert callable(getattr(cli, tool)) and tool in tools, script
    assert os.listdir(tmp_path) == []
