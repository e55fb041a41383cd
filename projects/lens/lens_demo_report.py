# Copyright (c) mmlesion contributors. All rights reserved.
"""Tables and picture of a LENS demo run (markdown, JSON, FROC PNG)."""
import json
import os.path as osp
from typing import Dict

import numpy as np

from mmlesion.evaluation.functional.froc_3d import LENS_FP_RATES
from mmlesion.utils.writing.atomic import atomic_save_with, atomic_write


def results_markdown(results: dict) -> str:
    """The results table in markdown."""
    rates = [f'sens@{float(r):g}' for r in LENS_FP_RATES]
    head = ['row'] + [r.replace('sens@', '@') for r in rates] + [
        'average', 'findings']
    lines = ['| ' + ' | '.join(head) + ' |',
             '| ' + ' | '.join(['---'] * len(head)) + ' |']
    not_run = results.get('not_run') or {}
    for name, r in results['rows'].items():
        if r is None:  # a row that did not run: no numbers
            lines.append('| ' + ' | '.join(
                [name, f"not run: {not_run.get(name, 'not run')}"] +
                [''] * (len(head) - 2)) + ' |')
            continue
        lines.append('| ' + ' | '.join(
            [name] + [f'{r[k]:.3f}' for k in rates + ['average']] +
            [str(r['findings'])]) + ' |')
    if results.get('settings', {}).get('max_train_iters') == 1:
        lines.append('\n--quick: one iteration per model; these numbers '
                     'check the path and mean nothing.')
    return '\n'.join(lines) + '\n'


def _delta(mining: dict) -> str:
    """delta and how it was chosen (``'0.157, calibrated'``)."""
    d = mining.get('delta')
    if not isinstance(d, dict):  # results written before calibration
        return 'n/a'
    return f"{d['delta']:.3g}, {d['source']}"


def mining_markdown(mining: dict) -> str:
    """Step 3's table: boxes of each strategy, precision and recall of the
    lesions the generator left out of ``DL_info.csv``."""
    c, ev = mining['counts'], mining['demo_evaluation']
    fm = ev.get('followup_missing', {})
    lines = [
        f"Mining on dataset 0's training series ({ev['series']} series): "
        f"{c['tracklets']} tracklets; {ev['unannotated_lesions']} lesions "
        'without a CSV row, of them '
        f"{fm.get('lesions', 0)} annotated in another study of the patient.",
        '',
        '| strategy | boxes | precision | recall of the left-out lesions '
        '| recall of the left-out follow-up lesions |',
        '| --- | --- | --- | --- | --- |',
        f"| (1) cross-slice propagation | {c['propagation']} | | | |",
        f"| (2) intra-patient matching (delta {_delta(mining)}) | "
        f"{c['intra_patient']} "
        f"({c['mined_lesions_intra_patient']} lesions) | | | |",
        f"| (1) + (2): mined (ground truth) | {ev['mined']['boxes']} | "
        f"{ev['mined']['precision']} | {ev['mined']['recall_unannotated']} "
        f"| {fm.get('mined_recall', '')} |",
        f"| (3) cross-dataset: uncertain (ignored) | "
        f"{ev['uncertain']['boxes']} | {ev['uncertain']['precision']} | "
        f"{ev['uncertain']['recall_unannotated']} | "
        f"{fm.get('uncertain_recall', '')} |",
        f"| any | | | {ev['any_recall_unannotated']} | "
        f"{fm.get('any_recall', '')} |",
    ]
    dist = c.get('embedding_distances', {})
    if dist:
        lines += ['', 'embedding distance to the nearest annotation of the '
                  'patient (p10 / p50 / p90): ' + '; '.join(
                      f"{k} (n={v['n']}): {v.get('p10')} / {v.get('p50')} / "
                      f"{v.get('p90')}" for k, v in dist.items())]
    return '\n'.join(lines) + '\n'


def write_results(results: dict, out_dir: str) -> Dict[str, str]:
    """``lens_demo.json``, ``lens_demo.md`` and ``lens_demo.png`` (average
    sensitivity per row, with the sensitivity at 1 and 4 FPs)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = {k: osp.join(out_dir, f'lens_demo.{k}')
             for k in ('json', 'md', 'png')}
    with atomic_write(paths['json']) as f:
        json.dump(results, f, indent=1)
    md = results_markdown(results)
    if 'reference' in results:
        md += ('\nreference, the CSV boxes of the evaluated key slices '
               'one slice thick: ' + json.dumps(results['reference']) + '\n')
    md += '\n' + mining_markdown(results['mining'])
    with atomic_write(paths['md']) as f:
        f.write(md)
    names = [n for n, r in results['rows'].items() if r is not None]
    keys = ['sens@1', 'sens@4', 'average']
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, k in enumerate(keys):
        ax.bar(x + (i - 1) * 0.27, [results['rows'][n][k] for n in names],
               0.27, label=k)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, ha='right')
    ax.set_ylim(0, 1)
    ax.set_ylabel('3D sensitivity (IoBB >= 0.3)')
    ax.set_title('LENS five steps on the synthetic demo data '
                 f"({results['eval_series']} sub-volumes)")
    ax.legend()
    fig.tight_layout()
    atomic_save_with(paths['png'], lambda p: fig.savefig(p, dpi=100))
    plt.close(fig)
    return paths
