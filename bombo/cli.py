"""bombo's command-line tools, from any folder, after ``pip install``.

The tools of the checkout's ``tools/`` folder ship inside the package as
``bombo/.mim/tools`` (mmdet's layout; in a checkout ``bombo/.mim/tools`` is a
symlink to ``tools/``, so an editable install runs the checkout's files).
This module runs them as ``python tools/<tool>.py`` would::

    bombo-train CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] ...
    bombo-test CONFIG CKPT [--work-dir DIR] [--out results.pkl] ...
    bombo-image-demo IMG CONFIG --weights CKPT [--out-dir outputs] ...
    bombo-dist-train CONFIG NUM_GPUS [train options]     # tools/dist_train.sh
    bombo TOOL [options]          # any tool: bombo make_splits voc ...
    bombo list                    # the tools and their one-line summaries
    python -m bombo TOOL [options]   # the same without the console scripts

``TOOL`` is a tool's file name without ``.py`` (``make_pseudo_masks``,
``tide_analysis``, ``misc/generate_paper_configs``, ...; ``-`` may replace
``_``). Every tool answers ``--help``.
"""
import os
import os.path as osp
import runpy
import subprocess
import sys
from typing import Dict, List, Optional

#: the folder of the imported ``bombo`` package
PACKAGE_DIR = osp.dirname(osp.abspath(__file__))

#: console scripts of setup.py: command -> tool
ENTRY_POINTS = {
    'bombo-train': 'train',
    'bombo-test': 'test',
    'bombo-image-demo': 'image_demo',
    'bombo-dist-train': 'dist_train',
}


def tools_dir() -> str:
    """The folder of the tools bombo ships (``<bombo>/.mim/tools``)."""
    return osp.join(PACKAGE_DIR, '.mim', 'tools')


def available_tools() -> Dict[str, str]:
    """``{name: path}`` of every shipped tool: ``tools/X.py`` and
    ``tools/X.sh`` are ``X``; ``tools/sub/X.py`` is ``X`` as well (when no
    other tool has that name) and ``sub/X``."""
    root = tools_dir()
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'{root!r} not found: this bombo installation carries no tools '
            '(a checkout needs the bombo/.mim/tools symlink to tools/)')
    found: Dict[str, str] = {}
    nested: Dict[str, List[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith(('.', '_')))
        rel = osp.relpath(dirpath, root)
        for fn in sorted(filenames):
            stem, ext = osp.splitext(fn)
            if ext not in ('.py', '.sh') or stem.startswith('_'):
                continue
            path = osp.join(dirpath, fn)
            if rel == '.':
                found[stem] = path
            else:
                found[f'{rel.replace(os.sep, "/")}/{stem}'] = path
                nested.setdefault(stem, []).append(path)
    for stem, paths in nested.items():
        if stem not in found and len(paths) == 1:
            found[stem] = paths[0]
    return found


def find_tool(name: str) -> str:
    """The path of tool ``name`` (see :func:`available_tools`)."""
    tools = available_tools()
    for key in (name, name.replace('-', '_')):
        key = key[:-3] if key.endswith(('.py', '.sh')) else key
        if key in tools:
            return tools[key]
    raise SystemExit(f'bombo: no tool {name!r}; the tools are: '
                     + ', '.join(sorted(tools)))


def _summary(path: str) -> str:
    """The first line of a tool's docstring (or of its leading comments),
    read without running it."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if path.endswith('.sh'):
        lines = []
        for ln in text.splitlines()[1:]:  # the comments after the shebang
            if not ln.startswith('#'):
                break
            lines.append(ln.lstrip('# ').strip())
        return lines[0].rstrip(':') + '.' if lines else ''
    import ast
    try:
        doc = ast.get_docstring(ast.parse(text)) or ''
    except SyntaxError:
        return ''
    first = doc.strip().split('\n\n')[0]
    return ' '.join(first.split())


def run_tool(name: str, argv: Optional[List[str]] = None) -> int:
    """Run tool ``name`` with ``argv`` as ``python tools/<name>.py argv``
    would (``sys.argv``, ``__main__``, the tool's folder first on
    ``sys.path``); a shell tool runs with bash, ``PYTHON`` set to this
    interpreter. Returns the exit status."""
    path = find_tool(name)
    argv = list(sys.argv[1:] if argv is None else argv)
    if path.endswith('.sh'):
        env = dict(os.environ)
        env.setdefault('PYTHON', sys.executable)
        return subprocess.call(['bash', path] + argv, env=env)
    saved = sys.argv, list(sys.path)
    sys.argv = [path] + argv
    sys.path.insert(0, osp.dirname(path))
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as e:  # the tools end with sys.exit(main())
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    finally:
        sys.argv, sys.path[:] = saved
    return 0


def _usage() -> str:
    lines = [__doc__.split('\n\n')[0], '',
             'usage: bombo TOOL [options]   (bombo TOOL --help: its options)',
             '       bombo list', '', 'tools:']
    tools = available_tools()
    # a tool listed once: under its short name when it has one
    short = {path: name for name, path in tools.items() if '/' not in name}
    for name, path in sorted(tools.items()):
        if '/' in name and path in short:
            continue
        lines.append(f'  {name:<28} {_summary(path)}')
    lines += ['', 'console scripts: ' + ', '.join(
        f'{cmd} (= bombo {tool})' for cmd, tool in ENTRY_POINTS.items())]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """``bombo TOOL [options]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help', 'help', 'list'):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ('-V', '--version'):
        from .version import __version__
        print(f'bombo {__version__}')
        return 0
    return run_tool(argv[0], argv[1:])


def _entry(tool: str):
    def run() -> int:
        return run_tool(tool)
    run.__name__ = run.__qualname__ = tool
    run.__doc__ = f'The console script of ``tools/{tool}``.'
    return run


train = _entry('train')
test = _entry('test')
image_demo = _entry('image_demo')
dist_train = _entry('dist_train')

if __name__ == '__main__':
    sys.exit(main())
