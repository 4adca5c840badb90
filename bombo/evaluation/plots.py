"""Figures for evaluation results: the TIDE summary (one run) and a TIDE comparison (several runs).

Drawn with matplotlib's object API on an Agg canvas (``matplotlib.figure.Figure`` +
``FigureCanvasAgg``): no pyplot state, no GUI backend, no change to global rcParams (tidecv's own
plotter calls ``seaborn.set()`` and writes into a user data directory, so it is not used). The
layout follows tidecv's summary figure: horizontal bars for the six main errors, vertical bars for
FP / FN, in tidecv's colours.
"""
import os
import os.path as osp
from typing import Mapping, Optional

import numpy as np

from .tide import TIDE_MAIN_ERRORS, TIDE_SPECIAL_ERRORS

# tidecv's seaborn 'muted' palette entries (Cls 9, Loc 8, Both 2, Dupe 6, Bkg 4, Miss 3; FP 0, FN 1)
TIDE_COLORS = {
    'Cls': '#82c6e2', 'Loc': '#d5bb67', 'Both': '#6acc64', 'Dupe': '#dc7ec0',
    'Bkg': '#8c613c', 'Miss': '#956cb4', 'FP': '#4878d0', 'FN': '#ee854a',
}


def _new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _round_up(x: float, step: float) -> float:
    return max(step, float(np.ceil(max(x, 0.0) / step) * step))


def plot_tide_summary(result: Mapping, out_file: Optional[str] = None, title: Optional[str] = None,
                      max_main: Optional[float] = None, max_special: Optional[float] = None):
    """Bar chart of one TIDE result: the six main dAP (horizontal) and FP / FN (vertical).

    Args:
        result (Mapping): output of :func:`bombo.evaluation.tide.compute_tide` (keys ``Cls`` ...
            ``FN``, optionally ``AP``, ``pos_thr``, ``counts``).
        out_file (str, optional): PNG path to write (parent folders created).
        title (str, optional): figure title (default: ``result['name']`` or 'TIDE').
        max_main (float, optional): x-limit for the main errors; default tidecv's fixed 10,
            rounded up to a multiple of 5 if a value is larger (fixed scales let runs compare).
        max_special (float, optional): y-limit for FP/FN; default tidecv's 25, rounded likewise.

    Returns:
        str | matplotlib.figure.Figure: ``out_file`` if given, otherwise the figure.
    """
    main = [float(result.get(k, 0.0)) for k in TIDE_MAIN_ERRORS]
    special = [float(result.get(k, 0.0)) for k in TIDE_SPECIAL_ERRORS]
    main = [v if np.isfinite(v) else 0.0 for v in main]
    special = [v if np.isfinite(v) else 0.0 for v in special]
    max_main = max_main or max(10.0, _round_up(max(main), 5.0))
    max_special = max_special or max(25.0, _round_up(max(special), 5.0))
    counts = result.get('counts') or {}

    fig = _new_figure((8.0, 4.0))
    grid = fig.add_gridspec(1, 2, width_ratios=[3, 1], wspace=0.35)
    ax = fig.add_subplot(grid[0])
    ypos = np.arange(len(TIDE_MAIN_ERRORS))
    ax.barh(ypos, main, color=[TIDE_COLORS[k] for k in TIDE_MAIN_ERRORS])
    ax.set_yticks(ypos, labels=list(TIDE_MAIN_ERRORS))
    ax.invert_yaxis()
    ax.set_xlim(0, max_main)
    ax.set_xlabel('dAP (points)')
    for y, v, k in zip(ypos, main, TIDE_MAIN_ERRORS):
        label = f'{v:.2f}' + (f'  (n={counts[k]})' if k in counts else '')
        ax.text(min(v, max_main) + 0.01 * max_main, y, label, va='center', fontsize=8)
    ax.set_title('main errors', fontsize=10)
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)

    ax2 = fig.add_subplot(grid[1])
    xpos = np.arange(len(TIDE_SPECIAL_ERRORS))
    ax2.bar(xpos, special, color=[TIDE_COLORS[k] for k in TIDE_SPECIAL_ERRORS])
    ax2.set_xticks(xpos, labels=list(TIDE_SPECIAL_ERRORS))
    ax2.set_ylim(0, max_special)
    for x, v in zip(xpos, special):
        ax2.text(x, min(v, max_special) + 0.01 * max_special, f'{v:.2f}', ha='center',
                 fontsize=8)
    ax2.set_title('special', fontsize=10)
    for side in ('top', 'right'):
        ax2.spines[side].set_visible(False)

    title = title or result.get('name') or 'TIDE'
    if 'AP' in result:
        thr = round(100 * float(result.get('pos_thr', 0.5)))
        title = f'{title}  (AP{thr} = {float(result["AP"]):.2f})'
    fig.suptitle(title, fontsize=11)
    if out_file is None:
        return fig
    if osp.dirname(out_file):
        os.makedirs(osp.dirname(out_file), exist_ok=True)
    fig.savefig(out_file, bbox_inches='tight')
    return out_file


def plot_tide_comparison(results: Mapping[str, Mapping], out_file: Optional[str] = None,
                         title: str = 'TIDE comparison'):
    """Grouped bars of several runs' TIDE errors (the paper's Table 2 as a figure).

    Args:
        results (Mapping[str, Mapping]): run name -> TIDE result.
        out_file (str, optional): PNG path; the figure is returned if None.
        title (str): figure title.
    """
    names = list(results)
    keys = list(TIDE_MAIN_ERRORS) + list(TIDE_SPECIAL_ERRORS)
    values = np.array([[float(results[n].get(k, np.nan)) for k in keys] for n in names])
    values = np.nan_to_num(values, nan=0.0)
    fig = _new_figure((max(6.0, 1.0 + 0.9 * len(keys) * max(1, len(names)) * 0.35), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(keys))
    for i, name in enumerate(names):
        ax.bar(x - 0.4 + width * (i + 0.5), values[i], width=width, label=name)
    ax.set_xticks(x, labels=keys)
    ax.set_ylabel('dAP (points)')
    ax.axvline(len(TIDE_MAIN_ERRORS) - 0.5, color='0.6', lw=0.8, ls='--')
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=11)
    for side in ('top', 'right'):
        ax.spines[side].set_visible(False)
    if out_file is None:
        return fig
    if osp.dirname(out_file):
        os.makedirs(osp.dirname(out_file), exist_ok=True)
    fig.savefig(out_file, bbox_inches='tight')
    return out_file
