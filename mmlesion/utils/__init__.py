# Copyright (c) mmlesion contributors. All rights reserved.
from .checkpoints import backend  # noqa: F401 (registers 'atomic_local')
from .checkpoints.checksum import (ChecksumMismatchError, sha256_file,
                                   verify_checkpoint_checksum, write_checksum)
from .checkpoints.loader import (CheckpointMismatchError,
                                 CorruptCheckpointError,
                                 UntrustedCheckpointError,
                                 check_state_dict_matches,
                                 load_local_checkpoint, load_model_checkpoint)
from .checkpoints.pretrained import resolve_checkpoint_source
from .checkpoints.resume import find_resumable_checkpoint, resume_candidates
from .configs.cv_fold import (apply_cv_fold, config_num_folds,
                              find_fold_datasets)
from .configs.known_keys import check_config_keys, find_unknown_config_keys
from .configs.lookup import get_config, lesion_config_path, repo_root
from .data_roots import demo_data_root, shared_data_root
from .distributed.cpu import close_distributed, setup_cpu_distributed
from .distributed.guard import collective_timeout_errors, guard_distributed
from .reporting.tool_logger import get_tool_logger
from .writing.atomic import (AtomicOutputSet, OutputDirError,
                             atomic_save_with, atomic_write,
                             atomic_write_json, atomic_write_text,
                             check_writable_dir)

__all__ = [
    'ChecksumMismatchError', 'sha256_file', 'verify_checkpoint_checksum',
    'write_checksum', 'CheckpointMismatchError', 'CorruptCheckpointError',
    'UntrustedCheckpointError', 'check_state_dict_matches',
    'load_local_checkpoint', 'load_model_checkpoint',
    'resolve_checkpoint_source', 'find_resumable_checkpoint',
    'resume_candidates', 'apply_cv_fold', 'config_num_folds',
    'find_fold_datasets', 'check_config_keys', 'find_unknown_config_keys',
    'get_config', 'lesion_config_path', 'repo_root', 'demo_data_root',
    'shared_data_root', 'close_distributed', 'setup_cpu_distributed',
    'collective_timeout_errors', 'guard_distributed', 'get_tool_logger',
    'AtomicOutputSet', 'OutputDirError', 'atomic_save_with', 'atomic_write',
    'atomic_write_json', 'atomic_write_text', 'check_writable_dir'
]
