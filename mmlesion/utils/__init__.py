# Copyright (c) mmlesion contributors. All rights reserved.
from .checkpoint_loader import (CheckpointMismatchError,
                                CorruptCheckpointError,
                                UntrustedCheckpointError,
                                check_state_dict_matches,
                                checkpoints_trusted, load_local_checkpoint,
                                load_model_checkpoint, mmengine_safe_globals,
                                patch_history_buffer_pickling,
                                register_checkpoint_loader)

__all__ = [
    'load_local_checkpoint', 'mmengine_safe_globals',
    'register_checkpoint_loader', 'CheckpointMismatchError',
    'CorruptCheckpointError', 'check_state_dict_matches',
    'patch_history_buffer_pickling', 'UntrustedCheckpointError',
    'checkpoints_trusted', 'load_model_checkpoint'
]
from .distributed.cpu import (close_distributed,  # noqa: E402
                              setup_cpu_distributed)

__all__ += ['setup_cpu_distributed', 'close_distributed']
from .configs.known_keys import (check_config_keys,  # noqa: E402
                                 find_unknown_config_keys, known_config_keys)
from .resume import find_resumable_checkpoint, resume_candidates  # noqa: E402

__all__ += [
    'check_config_keys', 'find_unknown_config_keys', 'known_config_keys',
    'find_resumable_checkpoint', 'resume_candidates'
]
from .pretrained import (register_torchvision_loader,  # noqa: E402
                         resolve_checkpoint_source)

__all__ += ['register_torchvision_loader', 'resolve_checkpoint_source']
from .cv_fold import (apply_cv_fold, config_num_folds,  # noqa: E402
                      find_fold_datasets)

__all__ += ['apply_cv_fold', 'config_num_folds', 'find_fold_datasets']
from .tool_logger import get_tool_logger  # noqa: E402

__all__ += ['get_tool_logger']
from .configs.lookup import (get_config, get_model_cfg,  # noqa: E402
                             repo_root)
from .data_roots import demo_data_root, shared_data_root  # noqa: E402

__all__ += [
    'get_config', 'get_model_cfg', 'repo_root', 'demo_data_root',
    'shared_data_root'
]
from .writing.atomic import (AtomicOutputSet, OutputDirError,  # noqa: E402
                             atomic_save_with, atomic_write,
                             atomic_write_bytes, atomic_write_json,
                             atomic_write_text, check_writable_dir, dump_json)
from .checkpoint_checksum import (ChecksumMismatchError,  # noqa: E402
                                  sha256_file, verify_checkpoint_checksum,
                                  write_checksum)
from . import checkpoint_backend  # noqa: E402,F401 (atomic_local)

__all__ += [
    'AtomicOutputSet', 'OutputDirError', 'atomic_save_with', 'atomic_write',
    'atomic_write_bytes', 'atomic_write_json', 'atomic_write_text',
    'check_writable_dir', 'dump_json', 'ChecksumMismatchError',
    'sha256_file', 'verify_checkpoint_checksum', 'write_checksum'
]
from .distributed.guard import (DistributedTimeoutError,  # noqa: E402
                         collective_timeout_errors, dist_timeout_seconds,
                         exit_with_parent, guard_distributed)

__all__ += [
    'DistributedTimeoutError', 'collective_timeout_errors',
    'dist_timeout_seconds', 'exit_with_parent', 'guard_distributed'
]
from .package_configs import (lesion_config_path,  # noqa: E402
                              register_config_scope)

__all__ += ['lesion_config_path', 'register_config_scope']
