# Copyright (c) mmlesion contributors. All rights reserved.
"""Summary picture of the hard regions found for Anchor Based Sampling."""
from typing import List

import numpy as np
from mmlesion.utils.writing.atomic import atomic_save_with


def plot_hard_regions(scans: List[dict], path: str) -> None:
    """Save the hard regions' score histograms (left) and counts per scan
    (right, stacked by kind) as a PNG.

    Args:
        scans (list[dict]): scan entries of a hard-region file.
        path (str): output PNG.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    kinds = (('hard_negative', 'hard negatives (false positives)',
              'tab:red'),
             ('hard_positive', 'hard positives (missed / low score)',
              'tab:blue'))
    fig = Figure(figsize=(11, 4.5), dpi=120)
    ax_hist, ax_scan = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 21)
    counts = np.zeros((len(kinds), len(scans)), dtype=np.int64)
    for k, (kind, label, colour) in enumerate(kinds):
        scores = [
            r['score'] for s in scans for r in s['regions']
            if r['kind'] == kind
        ]
        counts[k] = [
            sum(r['kind'] == kind for r in s['regions']) for s in scans
        ]
        ax_hist.hist(scores, bins=bins, color=colour, alpha=0.6,
                     label=f'{label}: {len(scores)}')
    ax_hist.set_xlabel('score')
    ax_hist.set_ylabel('regions')
    ax_hist.set_title('Scores of the hard regions')
    ax_hist.legend(fontsize=8)
    order = np.argsort(-counts.sum(0), kind='stable')
    x = np.arange(len(scans))
    bottom = np.zeros(len(scans))
    for k, (kind, label, colour) in enumerate(kinds):
        ax_scan.bar(x, counts[k, order], bottom=bottom, color=colour,
                    width=1.0, label=label)
        bottom += counts[k, order]
    ax_scan.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_scan.set_xlabel(f'training scans ({len(scans)}), sorted by count')
    ax_scan.set_ylabel('hard regions')
    ax_scan.set_title('Hard regions per scan')
    ax_scan.legend(fontsize=8)
    fig.tight_layout()
    atomic_save_with(path, fig.savefig)
