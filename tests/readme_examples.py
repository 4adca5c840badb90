#!/usr/bin/env python
"""The example commands of README.md: found, checked, and run end to end.

Imported by ``tests/test_readme_examples.py`` (the fast check: every
``python tools/X.py ...`` / ``bash tools/X.sh ...`` / ``make X`` of the
README and of docs/install.md names existing files, parses with the tool's
own argument parser, and every config path mentioned exists). Run as a
script, it executes every README command, in README order, on the toy data::

    python tests/readme_examples.py --list            # what would run
    python tests/readme_examples.py --max-iters 20    # all of it, short runs
    python tests/readme_examples.py                   # as written (hours)
    python tests/readme_examples.py --with-make       # + `make demo`
    python tests/readme_examples.py --with-benchmarks # + benchmarks/ lines

The commands that make the data (``make_toy_dataset.py``,
``make_real_format_data.py``) run first, the others in README order.
Commands run in a scratch folder (``--workdir``, default a temporary one)
that holds links to the checkout's ``configs/``, ``tools/``, ``bombo/`` and
``benchmarks/``, so that ``data/`` and ``work_dirs/`` are written there and
the checkout stays untouched; ``python`` is this interpreter. A usage line
with placeholders (``python tools/train.py CONFIG [--work-dir DIR] ...``) runs
with the values of :data:`FILL` (the toy config, the checkpoint the train
example wrote, 2 CPU processes for ``dist_train.sh``, ...). ``--max-iters N``
adds ``--cfg-options train_cfg.max_iters=N`` to every training command.
``make demo`` and ``make test`` run only with ``--with-make``, in the
checkout (they use its ``.venv``; ``make test`` is the whole suite and is
never run by this script: CI runs it); ``make`` (builds ``.venv``) is
checked by ``make -n``. Exit status 1 if any command fails.

Measured on 2 CPU cores shared with other jobs (load average 9,
2026-12-01): ``--max-iters 20``: 15 commands run, 0 failed, in 415 s
(``make_toy_dataset`` 30 s, ``train.py`` 67 s, ``test.py`` 20 s,
``dist_train.sh`` with 2 processes 49 s, ``make_real_format_data`` +
``convert_sbd`` + ``make_splits`` 40 s, ``make_pseudo_masks`` 18 s, each
``demo.py`` 40-47 s); the rest are ``make`` targets, installs and
benchmarks, not run by default. As written (``--max-iters`` not given)
the six trainings take 1,600 iterations each (README: 500-1,300 s each on
2 cores), about 1.5-2.5 hours in all.
"""
import argparse
import os
import os.path as osp
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: documents whose commands are checked (README.md is also run)
DOCS = ('README.md', 'docs/install.md')
#: a usage placeholder: CONFIG, CKPT, NUM_GPUS, N, DIR, IMG ...
PLACEHOLDER = re.compile(r'^[A-Z][A-Z0-9_]*$')
#: repository paths mentioned in the documents
REPO_PATH = re.compile(
    r'(?<![\w/.-])((?:configs|tools|docs|benchmarks|tests|requirements)/'
    r'[\w/{},.*+-]*[\w*}])')
CONSOLE = ('bombo', 'bombo-train', 'bombo-test', 'bombo-image-demo',
           'bombo-dist-train')

#: what a usage line's placeholders become when the runner runs it, by
#: script; each entry is the full argument list
TOY = 'configs/toy/toy_r18_fpn_mtl.py'
FILL: Dict[str, List[str]] = {
    'tools/train.py': [TOY, '--work-dir', 'work_dirs/readme_train'],
    'tools/test.py': [TOY, '{last_checkpoint:work_dirs/readme_train}',
                      '--work-dir', 'work_dirs/readme_test',
                      '--out', 'work_dirs/readme_test/results.pkl'],
    'tools/dist_train.sh': [TOY, '2', '--work-dir',
                            'work_dirs/readme_dist_train'],
    'tools/dist_test.sh': [TOY, '{last_checkpoint:work_dirs/readme_train}',
                           '2', '--work-dir', 'work_dirs/readme_dist_test'],
    'tools/make_pseudo_masks.py': ['configs/toy/toy_r18_fpn_b4m.py',
                                   '--workers', '2'],
    'tools/demo.py': ['{config}', '--work-dir', 'work_dirs/readme_{stem}'],
    'tools/image_demo.py': ['data/toy/JPEGImages', TOY, '--weights',
                            '{last_checkpoint:work_dirs/readme_train}',
                            '--out-dir', 'work_dirs/readme_image_demo'],
}
#: what other examples need (the data they read): run first, in this order
PREPARE = ('tools/make_toy_dataset.py', 'tools/make_real_format_data.py')
#: scripts that train (``--max-iters`` shortens them)
TRAINING = ('tools/train.py', 'tools/demo.py', 'tools/dist_train.sh')


@dataclass
class Command:
    """One example command of a document."""
    doc: str
    line: int
    text: str
    argv: List[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f'{self.doc}:{self.line}'

    @property
    def kind(self) -> str:
        """``python`` (a script), ``bash``, ``make``, ``console``
        (bombo's console scripts, ``python -m bombo``) or ``other``."""
        a = self.argv
        if not a:
            return 'other'
        if a[0] == 'make':
            return 'make'
        if a[0] in CONSOLE or a[:3] == ['python', '-m', 'bombo']:
            return 'console'
        if a[0] == 'bash' and len(a) > 1 and a[1].endswith('.sh'):
            return 'bash'
        if a[0] == 'python' and len(a) > 1 and a[1].endswith('.py'):
            return 'python'
        return 'other'

    @property
    def script(self) -> Optional[str]:
        """``tools/...`` the command runs (console scripts resolved)."""
        if self.kind in ('python', 'bash'):
            return self.argv[1]
        if self.kind == 'console':
            return console_tool(self.argv)[0]
        return None

    @property
    def args(self) -> List[str]:
        if self.kind in ('python', 'bash'):
            return self.argv[2:]
        if self.kind == 'console':
            return console_tool(self.argv)[1]
        return self.argv[1:]

    @property
    def is_usage(self) -> bool:
        """A usage line (placeholders, ``[optional]`` parts, ``...``)
        rather than a command to type as is."""
        return any(is_placeholder(t) for t in self.args)


def console_tool(argv: List[str]) -> tuple:
    """``(tools/<file> or None, args)`` of a console command: ``bombo-train
    ...`` or ``bombo TOOL ...`` / ``python -m bombo TOOL ...``
    (bombo/cli.py; ``None`` for ``bombo list`` / ``--help``)."""
    sys.path.insert(0, ROOT)
    try:
        from bombo import cli
    finally:
        sys.path.remove(ROOT)
    if argv[0] in cli.ENTRY_POINTS:
        name, args = cli.ENTRY_POINTS[argv[0]], argv[1:]
    else:
        rest = argv[1:] if argv[0] == 'bombo' else argv[3:]
        if not rest or rest[0].startswith('-') or rest[0] in (
                'list', 'help') or is_placeholder(rest[0]):
            return None, rest
        name, args = rest[0], rest[1:]
    try:
        path = cli.find_tool(name)
    except SystemExit:  # no such tool: a path that does not exist
        return f'tools/{name}.py', args
    rel = osp.relpath(path, cli.tools_dir())
    return 'tools/' + rel.replace(os.sep, '/'), args


def is_placeholder(token: str) -> bool:
    return bool(PLACEHOLDER.match(token) or '[' in token or ']' in token
                or token in ('...', 'k=v') or '|' in token
                or token.endswith('...'))


def expand_braces(token: str) -> List[str]:
    """``a_{x,y}.py`` -> ``['a_x.py', 'a_y.py']`` (nested and several
    groups as the shell does)."""
    m = re.search(r'\{([^{}]*,[^{}]*)\}', token)
    if not m:
        return [token]
    out = []
    for part in m.group(1).split(','):
        out += expand_braces(token[:m.start()] + part + token[m.end():])
    return out


def _argv(text: str) -> List[str]:
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError:
        return []
    while tokens and re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', tokens[0]):
        tokens.pop(0)  # VAR=value prefixes
    if len(tokens) > 1 and tokens[0].startswith(('tools/', 'benchmarks/')) \
            and tokens[0].endswith('.py'):
        # `tools/x.py --out ...` in prose (a bare `tools/x.py` names a file)
        tokens.insert(0, 'python')
    return tokens


def extract(doc: str, root: str = ROOT) -> List[Command]:
    """The commands of ``doc``: the lines of its ```bash / ```sh / ```shell
    blocks (``\\`` continuations joined, comments dropped) and the inline
    code spans of its prose that start with ``python``, ``bash``, ``make``,
    a console script or ``tools/...py``."""
    with open(osp.join(root, doc), encoding='utf-8') as f:
        text = f.read()
    commands = []
    prose = []
    fence = re.compile(r'^```(\w*)\s*$')
    lines = text.split('\n')
    i = 0
    while i < len(lines):
        m = fence.match(lines[i])
        if not m:
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        lang, i = m.group(1), i + 1
        block = []
        while i < len(lines) and not lines[i].startswith('```'):
            block.append((i + 1, lines[i]))
            i += 1
        i += 1
        prose.append((i, ''))
        if lang not in ('bash', 'sh', 'shell', 'console'):
            continue
        pending, start = '', None
        for n, ln in block:
            if start is None:
                start = n
            if ln.rstrip().endswith('\\'):
                pending += ln.rstrip()[:-1] + ' '
                continue
            cmd = (pending + ln).strip()
            pending, line_no, start = '', start, None
            argv = _argv(cmd)
            if argv:
                commands.append(Command(doc, line_no, cmd, argv))
    # inline spans (they may wrap over lines)
    joined = '\n'.join(ln for _, ln in prose)
    offsets = []
    pos = 0
    for n, ln in prose:
        offsets.append((pos, n))
        pos += len(ln) + 1
    for m in re.finditer(r'`([^`]+)`', joined):
        span = ' '.join(m.group(1).split())
        argv = _argv(span)
        if not argv:
            continue
        first = argv[0]
        if not (first in ('python', 'bash', 'make') or first in CONSOLE):
            continue
        if first in CONSOLE and len(argv) == 1:
            continue  # `bombo-train` in prose names the script
        line_no = max(n for off, n in offsets if off <= m.start())
        cmd = Command(doc, line_no, span, argv)
        if cmd.kind != 'other':
            commands.append(cmd)
    # in README order; on one line, a command as written before a usage
    # line (README: "B4M / BoMBo after make_pseudo_masks.py ...")
    commands.sort(key=lambda c: (c.line, c.is_usage))
    return commands


def mentioned_paths(doc: str, root: str = ROOT) -> List[tuple]:
    """``(line, path)`` of every repository path the document mentions
    (``configs/...``, ``tools/...``, ``docs/...``, ``benchmarks/...``,
    ``tests/...``), braces expanded."""
    out = []
    with open(osp.join(root, doc), encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            for m in REPO_PATH.finditer(line):
                for p in expand_braces(m.group(1)):
                    out.append((n, p.rstrip('.,;:')))
    return out


# ---------------------------------------------------------------------------
# parsing a command with the tool's own parser, without running the tool
class Parsed(BaseException):
    """Raised once the tool's parser has parsed its arguments (a
    BaseException, so that a tool's ``except Exception`` lets it by)."""

    def __init__(self, namespace, parsers):
        super().__init__('parsed')
        self.namespace, self.parsers = namespace, parsers


def parse_with_tool(script: str, argv: List[str], root: str = ROOT):
    """Run ``script`` as ``__main__`` with ``argv`` until its argparse
    parser has parsed them; returns ``(namespace, parsers)``. A bad argument
    is argparse's ``SystemExit(2)`` (its message on stderr). ``--help``
    gives ``SystemExit(0)``; either carries the parsers seen as
    ``.parsers``."""
    path = osp.join(root, script)
    with open(path, encoding='utf-8') as f:
        if 'argparse' not in f.read():
            raise ValueError(f'{script} has no argparse parser')
    parsers, depth = [], [0]
    orig_args = argparse.ArgumentParser.parse_args
    orig_known = argparse.ArgumentParser.parse_known_args

    def parse_args(self, *a, **kw):
        parsers.append(self)
        depth[0] += 1
        try:
            ns = orig_args(self, *a, **kw)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            raise Parsed(ns, parsers)
        return ns

    def parse_known_args(self, *a, **kw):
        parsers.append(self)
        depth[0] += 1
        try:
            res = orig_known(self, *a, **kw)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            raise Parsed(res[0], parsers)
        return res

    saved = sys.argv, list(sys.path)
    argparse.ArgumentParser.parse_args = parse_args
    argparse.ArgumentParser.parse_known_args = parse_known_args
    sys.argv = [path] + list(argv)
    sys.path.insert(0, osp.dirname(path))
    try:
        runpy.run_path(path, run_name='__main__')
    except Parsed as p:
        return p.namespace, p.parsers
    except SystemExit as e:
        e.parsers = parsers  # what --help or a bad argument went through
        raise
    finally:
        argparse.ArgumentParser.parse_args = orig_args
        argparse.ArgumentParser.parse_known_args = orig_known
        sys.argv, sys.path[:] = saved
    raise RuntimeError(f'{script} finished without parsing its arguments')


def option_strings(parsers) -> set:
    """Every option string of ``parsers`` and of their sub-commands."""
    out, todo = set(), list(parsers)
    while todo:
        p = todo.pop()
        for a in p._actions:
            out.update(a.option_strings)
            if isinstance(a, argparse._SubParsersAction):
                todo += list(a.choices.values())
    return out


def make_targets(root: str = ROOT) -> set:
    with open(osp.join(root, 'Makefile')) as f:
        return {m.group(1) for m in re.finditer(r'^([\w.-]+)\s*:', f.read(),
                                                re.M)}


# ---------------------------------------------------------------------------
# running
def _last_checkpoint(work_dir: str) -> str:
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: the training example did not '
                                'run before (or wrote no checkpoint)')
    with open(path) as f:
        return f.read().strip()


def runnable(cmd: Command) -> List[List[str]]:
    """The argument lists the runner executes for ``cmd`` (several for a
    ``{a,b}`` brace group; usage lines filled from :data:`FILL`; a console
    script as ``python tools/<tool>.py``, which it runs)."""
    if cmd.kind == 'console' and cmd.script:
        cmd = Command(cmd.doc, cmd.line, cmd.text, [
            'bash' if cmd.script.endswith('.sh') else 'python',
            cmd.script] + cmd.args)
    elif cmd.kind == 'console':  # bombo list, bombo --help
        return [['python', '-m', 'bombo'] + cmd.args]
    if cmd.kind not in ('python', 'bash'):
        return [cmd.argv]
    variants = []
    args = [expand_braces(t) for t in cmd.args]
    n = max(len(a) for a in args) if args else 1
    for i in range(n):
        concrete = [a[i] if len(a) > 1 else a[0] for a in args]
        if cmd.is_usage:
            fill = FILL.get(cmd.script)
            if fill is None:
                raise KeyError(f'{cmd.where}: no FILL for the usage line '
                               f'{cmd.text!r}')
            config = next((t for t in concrete if t.endswith('.py')), TOY)
            concrete = [t.replace('{config}', config).replace(
                '{stem}', osp.splitext(osp.basename(config))[0])
                for t in fill]
        variants.append([cmd.argv[0], cmd.script] + concrete)
    return variants


def run_all(commands: List[Command], workdir: str, max_iters=None,
            with_make=False, only=None, with_benchmarks=False,
            stream=sys.stdout) -> List[dict]:
    """Run the commands in ``workdir``; a list of ``dict(where, argv,
    status, seconds)`` (status: ``ok``, ``failed (rc)``, or why it was not
    run)."""
    for name in ('configs', 'tools', 'bombo', 'benchmarks'):
        link = osp.join(workdir, name)
        if not osp.lexists(link):
            os.symlink(osp.join(ROOT, name), link)
    env = dict(os.environ, PYTHON=sys.executable, MPLBACKEND='Agg')
    results, done = [], {}
    # the data first (the README's `make demo` and data sections make them)
    commands = sorted(commands, key=lambda c: (
        PREPARE.index(c.script) if c.script in PREPARE else len(PREPARE)))
    for cmd in commands:
        if only and only not in cmd.text:
            continue
        for argv in runnable(cmd):
            res = dict(where=cmd.where, argv=argv, status='ok', seconds=0.0)
            results.append(res)
            cwd = workdir
            if tuple(argv) in done:
                res['status'] = f'not run (ran at {done[tuple(argv)]})'
                continue
            done[tuple(argv)] = cmd.where
            if cmd.script and cmd.script.startswith('benchmarks/') and \
                    not with_benchmarks:
                res['status'] = 'not run (--with-benchmarks runs it)'
                continue
            if cmd.kind == 'make':
                target = argv[1] if len(argv) > 1 else 'venv'
                if target == 'test':
                    res['status'] = 'not run (the whole test suite: CI)'
                    continue
                if not with_make and target != 'venv':
                    res['status'] = 'not run (--with-make runs it)'
                    continue
                cwd = ROOT
                if target == 'venv':
                    argv = ['make', '-n']
            elif cmd.kind == 'other':
                res['status'] = 'not run (not a bombo command)'
                continue
            argv = [sys.executable if a == 'python' else a for a in argv]
            argv = [
                _last_checkpoint(osp.join(workdir, a.split(':', 1)[1][:-1]))
                if a.startswith('{last_checkpoint:') else a for a in argv]
            if max_iters and cmd.script in TRAINING:
                argv += ['--cfg-options', f'train_cfg.max_iters={max_iters}']
            stream.write(f'\n$ {" ".join(argv)}   ({cmd.where})\n')
            stream.flush()
            t0 = time.perf_counter()
            rc = subprocess.call(argv, cwd=cwd, env=env)
            res['seconds'] = round(time.perf_counter() - t0, 1)
            res['argv'] = argv
            if rc != 0:
                res['status'] = f'failed ({rc})'
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=type(
            'F', (argparse.ArgumentDefaultsHelpFormatter,
                  argparse.RawDescriptionHelpFormatter), {}))
    parser.add_argument('--list', action='store_true',
                        help='print the commands and what would run, run '
                        'nothing')
    parser.add_argument('--max-iters', type=int, default=None,
                        help='train every training example for this many '
                        'iterations (None: as the configs say)')
    parser.add_argument('--workdir', default=None,
                        help='scratch folder the commands run in (None: a '
                        'temporary folder, removed afterwards unless '
                        '--keep)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the temporary scratch folder')
    parser.add_argument('--with-make', action='store_true',
                        help='also run `make demo` in the checkout')
    parser.add_argument('--with-benchmarks', action='store_true',
                        help='also run the benchmark commands of the '
                        'Measured table (minutes each)')
    parser.add_argument('--only', default=None,
                        help='run only the commands whose text contains '
                        'this string')
    args = parser.parse_args(argv)
    commands = extract('README.md')
    if args.list:
        for cmd in commands:
            for a in runnable(cmd):
                print(f'{cmd.where:<16} {" ".join(a)}')
        return 0
    workdir = args.workdir or tempfile.mkdtemp(prefix='bombo-readme-')
    os.makedirs(workdir, exist_ok=True)
    t0 = time.perf_counter()
    try:
        results = run_all(commands, workdir, args.max_iters, args.with_make,
                          args.only, args.with_benchmarks)
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f'\n{"where":<16} {"status":<40} {"s":>7}  command')
    for r in results:
        print(f'{r["where"]:<16} {r["status"]:<40} {r["seconds"]:>7.1f}  '
              + ' '.join(r['argv'])[:120])
    failed = [r for r in results if r['status'].startswith('failed')]
    ran = [r for r in results if r['status'] in ('ok', ) or
           r['status'].startswith('failed')]
    print(f'\n{len(ran)} commands run, {len(failed)} failed, in '
          f'{time.perf_counter() - t0:.0f} s'
          + ('' if args.workdir is None and not args.keep else
             f' (outputs in {workdir})'))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
