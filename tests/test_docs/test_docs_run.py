# Copyright (c) mmlesion contributors. All rights reserved.
"""The real-data commands of the user docs run as written, on release
replicas.

Every shell block of ``README.md``, ``data/README.md``, ``docs/*.md`` and
the method READMEs is read (:mod:`tests.helpers.doc_commands`); each
command that touches real data (a converter, a tool reading ``data/``, a
training or test of a full-size config, ``tools/reproduce.py``) is either

* **run** as written in a folder laid out as the docs expect: tiny release
  replicas in ``data/DeepLesion``, ``data/LUNA16``, ``data/kits19``,
  ``data/LiTS`` and the NIH-LN ``SCANS`` / ``MASKS``, ``tools/`` linked and
  ``configs/`` copied from the repository (the user's ``data/`` is never
  touched). Sizes shrink only by ``--cfg-options`` appended to a training
  (:data:`TINY`) or ``--dry-run`` appended to ``tools/reproduce.py``;
* or **skipped** with its reason, derived from what the command itself
  shows (:func:`classify`): a placeholder of the user's file (``CONFIG``,
  ``$C``, ``<algo>``), a multi-GPU launcher, ``--device cuda``, a
  full-size training, a file under ``work_dirs/`` (the output of a
  training not run here), a 10-fold cross-validation, an anchor search or
  coverage; a command none of these fits is *unclassified* and fails
  here, naming it (:func:`test_every_real_data_command_is_classified`), so
  a new method's README needs no edit of this file. A skipped training or
  test of a full-size config still has its config read with the command's
  options and its data checked (:func:`mmlesion.datasets.data_layout.
  check_data_root`) after the commands that make the data ran.

So a wrong path or a missing step in the docs fails here. Every command,
run here, skipped here or not touching real data, is also started from the
clone's root without ``PYTHONPATH`` and checked to parse its arguments in
``test_lab_docs.py``. Commands run in
document order (the converters before what reads their output); the same
command written in two docs runs once. Trainings and tests run each in a
process of its own; neighbouring ``python tools/...`` commands that only
read and write files (converters, plans) run one after another in one
shared process (:mod:`tests.helpers.tool_batch`), each as ``python`` runs
it. A plain ``python <file>.py ...`` (no shell syntax), a batch among
them, is a fork of the suite's zygote (``tools_forked``), which imported
torch, mmdet and mmlesion once: the suite pays their imports once.
"""
import os
import os.path as osp
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from mmlesion.apps.reproduce.paper_tables import PAPER_TABLES
from mmlesion.testing import repo_root
from tests.helpers.doc_commands import (DocCommand, doc_commands,
                                           inline_commands)
from tests.helpers.elixirnet_tiny import tiny_options

ROOT = repo_root()
#: every registered method (a new one needs no edit here)
METHODS = tuple(PAPER_TABLES.parts())
DOCS = ([ROOT / 'README.md', ROOT / 'data' / 'README.md'] +
        sorted((ROOT / 'docs').glob('*.md')) +
        [ROOT / 'configs' / m / 'README.md' for m in METHODS])
#: Words of a command that stand for the user's own file.
PLACEHOLDERS = ('CONFIG', 'CHECKPOINT', 'CKPT', 'SCAN', 'DIR', 'WORK',
                'DEEPLESION_DIR', 'FPR_CONFIG', 'FPR_CHECKPOINT', 'N', 'K',
                'CONFIG_STEM', 'TABLE', '...')
#: Shrinks a full-size 2D DeepLesion config to seconds on a CPU (appended to
#: a training command as written, never edited into it).
TINY = tiny_options(train=1, val=1, test=1) + [
    'train_dataloader.batch_size=1']
#: The trainings that run (at TINY size); every other one is checked.
TRAINED = ('python tools/train.py configs/elixirnet/'
           'elixirnet-fig3geno_r50_fpn_4xb2-1x_deeplesion-3slice.py', )
#: Shrinks a test of a TRAINED config (appended).
TINY_TEST = tiny_options(train=0, val=0, test=1, train_cfg=False)

R_PLACEHOLDER = 'placeholder for a file of the user'
R_MULTI = 'multi-GPU launch (dist_train.sh / torch.distributed.run / Slurm)'
R_GPU = 'needs a GPU (--device cuda)'
R_TRAIN = 'full-size training: config and data layout checked, not trained'
R_CV = ('10-fold LUNA16 cross-validation (trains 10 folds): config and data '
        'layout checked')
R_TRAINED = ('reads the output of a training the harness does not run: '
             'config and data layout checked')
R_SEARCH = ('anchor search over the val boxes (minutes); its input '
            'DL_info.csv is checked')
R_COVERAGE = ('anchor coverage of every annotation under a full-size config '
              '(minutes): config and data layout checked')
#: The skips whose full-size config is read and its data checked.
CHECKED = (R_TRAIN, R_CV, R_TRAINED, R_COVERAGE)

#: Layout errors a check accepts: files made by a skipped command (mining,
#: FPR proposals) and splits a replica is too small to fill.
TOLERATED = ('lens_mined.json not found', 'lens_fpr_proposals.json not found',
             'has no row of split')


def _placeholder(cmd: DocCommand) -> bool:
    words = cmd.text.replace('/', ' ').replace('=', ' ').split()
    return (any(w in PLACEHOLDERS for w in words) or '<' in cmd.text
            or '$' in cmd.text or '[' in cmd.text.split('--cfg-options')[0])


def touches_real_data(cmd: DocCommand) -> bool:
    """Whether a command reads real data: a converter, ``reproduce.py``,
    a tool given a ``data/`` path or a full-size config (demo configs,
    installs, tests and the laboratory's synthetic tools do not)."""
    text = cmd.text
    if 'projects/' in text.split(' --')[0] or 'pytest' in text:
        return False
    if 'tools/dataset_converters/' in text or 'tools/reproduce.py' in text:
        return True
    words = text.split()
    data = [w for w in words if 'data/' in w and 'data/demo' not in w]
    full = [w for w in words if w.startswith(('configs/', '$'))
            and '/demo' not in w]
    tool = any(w.startswith(('tools/', '$T/')) for w in words)
    return tool and bool(data or full or 'CONFIG' in words)


def classify(cmd: DocCommand) -> Optional[str]:
    """``'run'``, the reason it is skipped, or None: a command that shows
    no reason (unclassified: a new kind of command needs a rule here)."""
    text = cmd.text
    if any(s in text for s in ('dist_train.sh', 'dist_test.sh', 'slurm_',
                               'torch.distributed.run')):
        return R_MULTI
    if _placeholder(cmd):
        return R_PLACEHOLDER
    if '--device cuda' in text:
        return R_GPU
    if any(t in text for t in ('tools/dataset_converters/',
                               'tools/reproduce.py', 'tools/plan_dataset.py')):
        return 'run'
    if 'tools/luna16_cv.py' in text:
        return R_CV
    if 'optimize_anchors.py' in text:
        return R_SEARCH
    if 'anchor_coverage.py' in text:
        return R_COVERAGE
    if text.startswith('python tools/train.py'):
        return 'run' if text in TRAINED else R_TRAIN
    if text.startswith('python tools/test.py'):
        ckpt = text.split()[3]
        stem = osp.basename(text.split()[2])[:-3]
        trained = [osp.basename(t.split()[2])[:-3] for t in TRAINED]
        if stem in trained and ckpt.startswith(f'work_dirs/{stem}/'):
            return 'run'
    return R_TRAINED if 'work_dirs/' in text else None


def real_commands() -> List[DocCommand]:
    out = []
    for doc in DOCS:
        out.extend(c for c in doc_commands(doc, ROOT)
                   if touches_real_data(c))
    return out


def test_every_real_data_command_is_classified():
    """Each real-data command of the docs runs or shows why it is skipped;
    one that shows no reason is named here."""
    unclassified = [f'{c.doc}:{c.line}: {c.written}' for c in real_commands()
                    if classify(c) is None]
    assert unclassified == [], (
        'commands that neither run here nor show a reason to be skipped '
        '(a placeholder, a launcher, work_dirs/...): give each a rule in '
        'classify()\n' + '\n'.join(unclassified))


def test_the_reasons_are_read_from_the_command():
    def reason(text):
        return classify(DocCommand('x.md', 1, text, text))

    full = 'configs/elixirnet/elixirnet-fig3geno_r50_fpn_4xb2-1x.py'
    assert reason(f'python tools/train.py {full}') == R_TRAIN
    assert reason('python tools/train.py CONFIG --resume') == R_PLACEHOLDER
    assert reason(f'bash tools/dist_train.sh {full} 4') == R_MULTI
    assert reason(f'python tools/test.py {full} work_dirs/x/epoch_1.pth'
                  ) == R_TRAINED
    assert reason(f'python tools/test.py {full} /ckpts/x.pth') is None
    assert reason('python tools/new_tool.py data/DeepLesion/x.csv') is None
    assert reason('python tools/reproduce.py elixirnet/table5') == 'run'


def test_extractor_joins_substitutes_and_unrolls():
    from tests.helpers.doc_commands import block_commands
    lines = ['C=configs/x; A="--a data/a.csv --b 1"   # two',
             '# a comment', 'python tools/t.py $C/y.py $A \\',
             "    --out 'w/{fold}.json'  # trailing",
             'for K in 0 1; do', '  python tools/t.py ${C}_$K --fold $K',
             'done', 'OMP_NUM_THREADS=1 python x.py && echo "a;b"']
    got = [c.text for c in block_commands(lines)]
    assert got == [
        "python tools/t.py configs/x/y.py --a data/a.csv --b 1 --out "
        "'w/{fold}.json'", 'python tools/t.py configs/x_0 --fold 0',
        'python tools/t.py configs/x_1 --fold 1',
        'OMP_NUM_THREADS=1 python x.py', 'echo "a;b"'
    ]


def test_real_data_commands_sit_in_blocks():
    """A real-data command written inline (outside a fenced block) is not
    run by this harness: it must move into a block (or name a
    placeholder)."""
    inline = []
    for doc in DOCS:
        for line, text in inline_commands(doc):
            cmd = DocCommand(str(doc.relative_to(ROOT)), line, text, text)
            # a table's plan (--dry-run, --help, --list) runs for every
            # table in test_dry_run_every_table
            # (tests/test_tools/test_reproduce.py)
            plan = 'reproduce.py' in text and any(
                f in text for f in ('--dry-run', '--help', '--list'))
            if touches_real_data(cmd) and not _placeholder(cmd) \
                    and not plan:
                inline.append(f'{cmd.doc}:{line}: {text}')
    assert inline == []


def _layout(tmp: Path) -> None:
    """The folder the docs expect: replicas under data/, SCANS / MASKS,
    tools/ linked, configs/ copied (optimize_anchors --out writes there)."""
    from projects.replicas.release import generate_release_replica
    for dataset, folder, size in (('deeplesion', 'data/DeepLesion', 'tiny'),
                                  ('luna16', 'data/LUNA16', 'tiny'),
                                  ('kits19', 'data/kits19', 'small'),
                                  ('lits', 'data/LiTS', 'tiny'),
                                  ('nih_ln', 'nih_ln_release', 'tiny')):
        generate_release_replica(dataset, str(tmp / folder), size=size,
                                 seed=0)
    (tmp / 'SCANS').symlink_to(tmp / 'nih_ln_release' / 'CT Lymph Nodes')
    (tmp / 'MASKS').symlink_to(tmp / 'nih_ln_release' /
                               'MED_ABD_LYMPH_MASKS')
    (tmp / 'tools').symlink_to(ROOT / 'tools')
    shutil.copytree(ROOT / 'configs', tmp / 'configs',
                    ignore=shutil.ignore_patterns('__pycache__'))


def _run(text: str, cwd: Path, timeout: int = 300,
         pythonpath: str = '') -> subprocess.CompletedProcess:
    # CUDA_VISIBLE_DEVICES: the commands run as on a CPU machine (a plan's
    # --dry-run would otherwise time every config on a GPU)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='',
               PATH=osp.dirname(sys.executable) + os.pathsep +
               os.environ.get('PATH', ''))
    if pythonpath:
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in (pythonpath, env.get('PYTHONPATH')) if p)
    words = shlex.split(text)
    if (len(words) > 1 and words[0] == 'python' and words[1].endswith('.py')
            and not any(c in text for c in '|;&$`<>*?~')):
        # ``python`` of PATH above is this interpreter: a fork of the
        # suite's zygote (``tools_forked``), its imports done once
        return subprocess.run([sys.executable] + words[1:], cwd=cwd, env=env,
                              capture_output=True, text=True,
                              timeout=timeout)
    return subprocess.run(['bash', '-c', text], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _batchable(text: str) -> bool:
    """A ``python tools/...`` command that neither trains nor tests: it
    runs in the shared process of :mod:`tests.helpers.tool_batch`."""
    words = text.split()
    return (len(words) > 1 and words[0] == 'python'
            and words[1].startswith('tools/') and words[1].endswith('.py')
            and words[1] not in ('tools/train.py', 'tools/test.py')
            and not any(c in text for c in '|;&$`<>'))


def _run_batch(texts: List[str], cwd: Path) -> List[dict]:
    """Run the commands one after another in one process (their imports
    paid once), each as ``python`` runs it: exit code and output each."""
    import json
    jobs = [dict(argv=shlex.split(t)[1:], cwd=str(cwd)) for t in texts]
    (cwd / '.tool_jobs.json').write_text(json.dumps(jobs))
    run = _run(f'python {ROOT}/tests/helpers/tool_batch.py .tool_jobs.json '
               f'.tool_results.json', cwd, timeout=600,
               pythonpath=str(ROOT))
    if run.returncode != 0:
        return [dict(returncode=run.returncode,
                     output=(run.stdout + run.stderr)[-3000:])] * len(texts)
    results = json.loads((cwd / '.tool_results.json').read_text())
    for name in ('.tool_jobs.json', '.tool_results.json'):
        (cwd / name).unlink()
    return results


def _check_configs(cmds: List[DocCommand], cwd: Path) -> List[str]:
    """Read each command's config with its own ``--fold`` in ``cwd`` and
    check its data; the failures."""
    from mmengine.config import Config

    from mmlesion.utils import apply_cv_fold
    from mmlesion.datasets.data_layout import check_data_root
    out, seen, here = [], set(), os.getcwd()
    os.chdir(cwd)
    try:
        for cmd in cmds:
            argv = cmd.argv()
            config = next(w for w in argv if w.startswith('configs/'))
            fold = argv[argv.index('--fold') + 1] if '--fold' in argv else None
            if (config, fold) in seen:
                continue
            seen.add((config, fold))
            try:
                cfg = Config.fromfile(config)
                if fold is not None:
                    apply_cv_fold(cfg, int(fold), source=config)
                check_data_root(cfg)
            except Exception as err:  # noqa: BLE001 (reported below)
                if any(t in str(err) for t in TOLERATED):
                    continue
                out.append(f'{cmd.doc}:{cmd.line}: {cmd.text}\n'
                           f'{type(err).__name__}: {err}')
    finally:
        os.chdir(here)
    return out


@pytest.mark.usefixtures('tools_forked')
def test_doc_commands_run_on_replicas(tmp_path):
    start = time.time()
    _layout(tmp_path)
    done, ran, checked, failures = set(), [], [], []
    batch: List[Tuple[DocCommand, str]] = []
    flushed: List[str] = []

    def _flush(pending: List[Tuple[DocCommand, str]], cwd: Path
               ) -> List[str]:
        """Run the pending batch; its failures (and it is emptied)."""
        out = []
        if pending:
            results = _run_batch([t for _, t in pending], cwd)
            for (cmd, _), res in zip(pending, results):
                flushed.append(f'{cmd.doc}:{cmd.line}')
                if res['returncode'] != 0:
                    out.append(f'{cmd.doc}:{cmd.line}: {cmd.text}\n'
                               f"{res['output'][-1500:]}")
            pending.clear()
        return out

    skipped: Dict[Tuple[str, str], str] = {}
    for cmd in real_commands():
        what = classify(cmd)
        if what != 'run':
            skipped[(cmd.doc, cmd.written)] = what
            if what in CHECKED and 'configs/' in cmd.text:
                checked.append(cmd)
            continue
        if cmd.text in done:
            continue
        done.add(cmd.text)
        text = cmd.text
        if 'tools/reproduce.py' in text and '--dry-run' not in text:
            text += ' --dry-run'
        if text.startswith('python tools/train.py'):
            text += ' --cfg-options ' + ' '.join(map(shlex.quote, TINY))
        if text.startswith('python tools/test.py'):
            ckpt = tmp_path / text.split()[3]
            stand_in = ckpt.parent / 'epoch_1.pth'  # for epoch_N.pth
            if not ckpt.exists() and stand_in.exists():  # else: it fails
                os.link(stand_in, ckpt)
            text += ' --cfg-options ' + ' '.join(map(shlex.quote, TINY_TEST))
        if _batchable(text):  # runs with its neighbours, in order
            batch.append((cmd, text))
            continue
        failures += _flush(batch, tmp_path)
        run = _run(text, tmp_path)
        ran.append(f'{cmd.doc}:{cmd.line}')
        if run.returncode != 0:
            failures.append(f'{cmd.doc}:{cmd.line}: {cmd.text}\n'
                            f'{(run.stdout + run.stderr)[-1500:]}')
    failures += _flush(batch, tmp_path)
    ran += flushed
    # (every table's plan: test_dry_run_every_table in
    # tests/test_tools/test_reproduce.py; the docs' own reproduce commands
    # ran above, in the docs' layout, with --dry-run)
    failures += _check_configs(checked, tmp_path)
    print('\n'.join(sorted(f'SKIP {k[0]}: {k[1]} -- {v}'
                            for k, v in skipped.items())))
    assert failures == [], '\n\n'.join(failures)
    assert None not in skipped.values(), [  # (the test above names them)
        k for k, v in skipped.items() if v is None]
    assert len(ran) >= 8, ran
    print(f'ran {len(ran)}, skipped {len(skipped)} ({len(checked)} checked) '
          f'in {time.time() - start:.0f} s')
