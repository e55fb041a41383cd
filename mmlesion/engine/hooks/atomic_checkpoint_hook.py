# Copyright (c) mmlesion contributors. All rights reserved.
"""mmengine's ``CheckpointHook`` whose files survive a kill at any moment."""
import errno
import logging
import os.path as osp
import re
import zipfile
from typing import Dict, List, Optional

from mmengine.dist import (broadcast_object_list, get_world_size,
                           is_main_process)
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmdet.registry import HOOKS

from mmlesion.utils.checkpoints.backend import AtomicLocalBackend
from mmlesion.utils.writing.atomic import atomic_write_text, \
    remove_stale_temporaries
from mmlesion.utils.checkpoints.checksum import (ChecksumMismatchError,
                                                 verify_checkpoint_checksum)
from mmlesion.utils.checkpoints.resume import local_record
from mmlesion.utils.writing.refusals import (WriteFailure, WriteRefusedError,
                                             existing_folder, format_bytes,
                                             free_bytes)
from .random_state_hook import (RandomStateHook, get_random_state,
                                set_random_state)
from mmlesion.evaluation.functional.operating_points import \
    OPERATING_POINTS_KEY
from .validation_record import (VALIDATION_RECORD, read_validation_record,
                                remove_validation_record, validation_due,
                                validated_operating_points,
                                write_validation_record)

_STEP_RE = re.compile(r'_(epoch|iter)_(\d+)\.pth$')
#: Bytes a resumed run's logs need, at most (text log and scalars).
LOG_ALLOWANCE = 1 << 20


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic, checksummed, never-lost checkpoints.

    Every checkpoint (and ``last_checkpoint``) is written atomically with
    a SHA-256 sidecar; outdated checkpoints and the previous best are
    removed only after the new one is in place. On resume: the records
    are taken in this run's folder only, free space is checked first, a
    broken best file is rebuilt from its epoch checkpoint where kept, and
    an unfinished validation is run first. The best checkpoint records the
    validation's operating points. Non-local ``out_dir`` / ``backend_args``
    go to mmengine unchanged (docs/faults_and_resume.md).

    Args:
        **kwargs: the arguments of :class:`mmengine.hooks.CheckpointHook`.
    """

    def __init__(self, **kwargs) -> None:
        out_dir = kwargs.get('out_dir')
        local = out_dir is None or '://' not in str(out_dir)
        if (local and kwargs.get('backend_args') is None
                and kwargs.get('file_client_args') is None):
            kwargs['backend_args'] = dict(backend='atomic_local')
        super().__init__(**kwargs)
        # message hub epoch / iter of a resumed checkpoint; None: no resume
        self._resumed_info: Optional[Dict[str, int]] = None
        self._training = False  # between before_train and after_train
        self._validated = None  # while a validation saves its best file

    @property
    def atomic(self) -> bool:
        """Whether checkpoints go through :class:`AtomicLocalBackend`."""
        return isinstance(getattr(self, 'file_backend', None),
                          AtomicLocalBackend)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On resume, keep the message hub's ``epoch`` / ``iter`` of the
        checkpoint: the values an uninterrupted run validated with."""
        if not getattr(runner, '_resume', False):
            return
        hub = checkpoint.get('message_hub')
        info = hub.get('runtime_info') if isinstance(hub, dict) else None
        self._resumed_info = {
            key: info[key]
            for key in ('epoch', 'iter')
            if isinstance(info, dict) and key in info
        }

    def before_train(self, runner) -> None:
        """Clean temporaries of a killed save, check the best file, and on
        resume finish the validation the interrupted run left undone."""
        super().before_train(runner)
        resumed = self._resumed_info is not None
        if resumed:
            self._own_records(runner)
            self._check_free_space(runner)
        if is_main_process() and self.atomic:
            for path in remove_stale_temporaries(self.out_dir):
                print_log(f'Removed {path}, left by a save that was killed',
                          logger='current', level=logging.WARNING)
            if self.save_best is not None:
                self._check_best_files(runner)
        if resumed:
            # as in the uninterrupted run, whose last save set it: a new best
            # found by the validation below re-saves the epoch checkpoint
            if self.last_ckpt is None:
                self.last_ckpt = runner.message_hub.get_info('last_ckpt')
            self._finish_validation(runner)
            self._resumed_info = None
        elif is_main_process():  # a new run: no validation finished yet
            remove_validation_record(runner.work_dir)
        self._training = True

    def after_val_epoch(self, runner, metrics) -> None:
        """Save the best checkpoint, then record that this validation
        finished."""
        self._validated = validated_operating_points(runner)
        try:
            super().after_val_epoch(runner, metrics)
        finally:
            self._validated = None
        if self._training and is_main_process():
            write_validation_record(runner.work_dir, runner.epoch, runner.iter)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Record the validation's operating points in the best checkpoint
        it writes."""
        if self._validated is not None:
            checkpoint.setdefault('meta', {})[OPERATING_POINTS_KEY] = \
                self._validated.to_dict()

    def after_train(self, runner) -> None:
        """Publish (mmengine's ``published_keys``); stop recording."""
        super().after_train(runner)
        self._training = False

    def _finish_validation(self, runner) -> None:
        """Validate the resumed step if its validation never finished, with
        the generators and ``epoch`` / ``iter`` of the uninterrupted run."""
        step = (validation_due(runner.train_loop)
                if runner.val_loop is not None else None)
        if step is None:
            return
        record = [read_validation_record(runner.work_dir)
                  if is_main_process() else None]
        if get_world_size() > 1:
            broadcast_object_list(record)
        if record[0] == (runner.epoch, runner.iter):
            return
        print_log(
            f'--resume: the validation of {step} did not finish (the run '
            'was stopped while validating or while writing the best '
            f'checkpoint; {VALIDATION_RECORD} in the work dir does not name '
            f'it): validating {step} now, before training goes on.',
            logger='current', level=logging.WARNING)
        hub = runner.message_hub
        now = {key: hub.get_info(key) for key in ('epoch', 'iter')}
        generators = get_random_state()
        snapshot = next((getattr(h, '_snapshot', None)
                         for h in runner.hooks
                         if isinstance(h, RandomStateHook)), None)
        try:
            if snapshot is not None:
                set_random_state(snapshot)
            for key, value in self._resumed_info.items():
                hub.update_info(key, value)
            runner.val_loop.run()
        finally:
            for key, value in now.items():
                hub.update_info(key, value)
            set_random_state(generators)

    def _own_records(self, runner) -> None:
        """Resolve the resumed checkpoint's records of files (best and
        last checkpoint) in ``out_dir`` (see the class)."""
        hub = runner.message_hub
        where = f'{runner._load_from or "the resumed checkpoint"}'
        for key, path in self._best_paths().items():
            self._set_best_path(runner, key, local_record(
                path, self.out_dir, where) if self.atomic else path)
        if self.atomic and hub.get_info('last_ckpt'):
            hub.update_info('last_ckpt', local_record(
                hub.get_info('last_ckpt'), self.out_dir, where))

    def _check_free_space(self, runner) -> None:
        """Refuse a resume whose file system cannot take what it will
        write, before training (see the class)."""
        last = runner._load_from
        if not (self.atomic and last and osp.isfile(last)):
            return
        size = osp.getsize(last)
        done, end = ((runner.epoch, runner.max_epochs) if self.by_epoch else
                     (runner.iter, runner.max_iters))
        saves = max(1, -(-(end - done) // self.interval))
        if self.max_keep_ckpts > 0:  # those kept now are removed in turn
            kept = sum(osp.isfile(osp.join(
                self.out_dir, self.filename_tmpl.format(step)))
                for step in self.keep_ckpt_ids)
            saves = max(1, min(saves, self.max_keep_ckpts) - kept + 1)
        best = [osp.getsize(p) for p in self._best_paths().values()
                if p and osp.isfile(p)]
        best_size = (max(best) if best else size) if self.save_best else 0
        need = saves * size + best_size + LOG_ALLOWANCE
        free = free_bytes(self.out_dir)
        if free is not None and free < need:
            raise WriteRefusedError(WriteFailure(
                path=self.out_dir, errno=errno.ENOSPC, needed=need,
                free=free, folder=existing_folder(self.out_dir), needed_for=(
                    f'{saves} checkpoint(s) of {format_bytes(size)}, the '
                    f'size of {osp.basename(last)}, a best checkpoint of '
                    f'{format_bytes(best_size)} and '
                    f'{format_bytes(LOG_ALLOWANCE)} of logs; checked before '
                    'training')))

    def _best_paths(self) -> Dict[str, Optional[str]]:
        if self.save_best is None:  # no best checkpoint kept
            return {}
        if len(self.key_indicators) == 1:
            return {self.key_indicators[0]: self.best_ckpt_path}
        return dict(self.best_ckpt_path_dict)

    def _set_best_path(self, runner, key: str, path: Optional[str]) -> None:
        if len(self.key_indicators) == 1:
            self.best_ckpt_path = path
            runner.message_hub.update_info('best_ckpt', path)
        else:
            self.best_ckpt_path_dict[key] = path
            runner.message_hub.update_info(f'best_ckpt_{key}', path)

    @staticmethod
    def broken_reason(path: str) -> Optional[str]:
        """Why checkpoint ``path`` is unusable (missing, checksum mismatch,
        no complete zip archive), or None if it looks intact."""
        if not osp.isfile(path):
            return 'missing'
        try:
            verify_checkpoint_checksum(path)
        except ChecksumMismatchError as err:
            return str(err)
        if not zipfile.is_zipfile(path):
            return (f'truncated or not a checkpoint '
                    f'({osp.getsize(path)} bytes, not a complete archive)')
        return None

    def _check_best_files(self, runner) -> None:
        for key, path in self._best_paths().items():
            if not path:
                continue
            reason = self.broken_reason(path)
            if reason is None:
                continue
            match = _STEP_RE.search(path)
            source = None
            if match:
                source = self.file_backend.join_path(
                    self.out_dir, self.filename_tmpl.format(
                        int(match.group(2))))
            score = runner.message_hub.get_info(
                'best_score' if len(self.key_indicators) == 1 else
                f'best_score_{key}')
            if source and self.broken_reason(source) is None:
                with open(source, 'rb') as f:
                    self.file_backend.put(f.read(), path)
                print_log(
                    f'--resume: the best checkpoint {path} was unusable '
                    f'({reason}); rebuilt it from {source} (the same '
                    f'weights, {key} = {score}).',
                    logger='current', level=logging.WARNING)
                continue
            self._set_best_path(runner, key, None)
            print_log(
                f'--resume: the best checkpoint {path} ({key} = {score}) is '
                f'unusable ({reason}) and its epoch checkpoint '
                f'{source or "?"} is not kept: the best weights are LOST. '
                'Training goes on; a new best file is written when a '
                f'validation beats {key} = {score}. To keep the best of '
                'the remaining epochs instead, resume with --cfg-options '
                '"default_hooks.checkpoint.max_keep_ckpts=-1" and pick it '
                'from the validation log, or re-train.',
                logger='current', level=logging.ERROR)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """mmengine's rotation, but the outdated checkpoint is removed
        after the new one and ``last_checkpoint`` are in place."""
        outdated: List[int] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_text(
            osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old in outdated:
            self._remove(
                self.file_backend.join_path(self.out_dir,
                                            self.filename_tmpl.format(old)))

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed checkpoints
            self.file_backend.rmtree(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's best-checkpoint logic, with the previous best removed
        only after the new one is written."""
        backend = self.file_backend
        deferred: List[str] = []
        # mmengine removes the previous best before saving the new one;
        # collect those removals and do them once the new file is in place.
        backend.remove = backend.rmtree = deferred.append
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            del backend.remove, backend.rmtree
        for path in deferred:
            self._remove(path)
