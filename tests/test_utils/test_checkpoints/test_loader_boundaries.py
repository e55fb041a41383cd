# Copyright (c) mmlesion contributors. All rights reserved.
"""Boundaries of the safe checkpoint loader
(:mod:`mmlesion.utils.checkpoints.loader`).

Pinned, on tiny synthetic checkpoints: the restricted ``getattr`` (each
built-in statistic, any other object or name refused with its message),
the allow-list, the trust switch (only ``1``), the ``HistoryBuffer``
pickling that drops only the built-in statistics, the exact messages of
every refusal (missing, empty, not a zip, unreadable, a non-dict, fields
of the wrong type, NaN / Inf weights) with the counts at their limits
(three odd values, ``max_names`` names), the globals named from the
pickle's opcodes (one, several, a legacy file, a refused ``getattr``),
the first-sentence cut of torch's messages, the trusted full load and its
failure, the model check (``_metadata`` kept through ``revise_keys``,
``allowed_missing`` prefixes, long lines cut) and
:func:`load_model_checkpoint`'s switches (docs/mutation_testing.md).
"""
import collections
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

from mmlesion.utils.checkpoints import loader as cl
from mmlesion.utils.checkpoints.loader import (
     TRUST_ENV, CheckpointMismatchError, CorruptCheckpointError,
     NonFiniteWeightsError, UntrustedCheckpointError, check_checkpoint_fields,
     check_finite_weights, check_state_dict_matches, checkpoints_trusted,
     history_buffer_statistic, load_local_checkpoint, load_model_checkpoint,
     mmengine_safe_globals)


@pytest.fixture
def untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)


class _Payload:

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# ------------------------------------------------------------ allow-list
@pytest.mark.parametrize('name', ['min', 'max', 'current', 'mean'])
def test_history_buffer_statistic_allows_the_built_ins(name):
    assert history_buffer_statistic(HistoryBuffer, name) is getattr(
        HistoryBuffer, name)


@pytest.mark.parametrize('obj,name,shown', [
    (HistoryBuffer, '__init__', 'HistoryBuffer'),
    (HistoryBuffer, 'statistics', 'HistoryBuffer'),
    (dict, 'mean', 'dict'),
    (3, 'max', 'int'),
])
def test_history_buffer_statistic_refuses_the_rest(obj, name, shown):
    with pytest.raises(pickle.UnpicklingError) as err:
        history_buffer_statistic(obj, name)
    assert str(err.value) == (
        f'getattr({shown}, {name!r}) is not allowed in a checkpoint (only '
        'HistoryBuffer.min/max/current/mean)')


def test_safe_globals():
    safe = mmengine_safe_globals()
    multiarray = np._core.multiarray
    for entry in (HistoryBuffer, multiarray._reconstruct, multiarray.scalar,
                  np.ndarray, np.dtype, collections.Counter,
                  (history_buffer_statistic, 'builtins.getattr'),
                  (history_buffer_statistic, '__builtin__.getattr')):
        assert entry in safe
    for name in np.dtypes.__all__:
        assert getattr(np.dtypes, name) in safe
    assert len(safe) == 8 + len(np.dtypes.__all__)


@pytest.mark.parametrize('value,trusted', [('1', True), ('0', False),
                                           ('true', False), ('', False)])
def test_only_one_trusts(monkeypatch, value, trusted):
    monkeypatch.setenv(TRUST_ENV, value)
    assert checkpoints_trusted() is trusted
    monkeypatch.delenv(TRUST_ENV)
    assert checkpoints_trusted() is False


def test_history_buffer_state_keeps_only_custom_statistics(monkeypatch):
    buf = HistoryBuffer([1.0, 2.0], [1, 1])
    state = cl._history_buffer_getstate(buf)
    assert 'statistics_methods' not in state
    assert state['_log_history'].tolist() == [1.0, 2.0]

    def weighted(self):
        return 0.0

    # a custom one (and a built-in name bound to something else) are kept
    monkeypatch.setitem(buf._statistics_methods, 'weighted', weighted)
    monkeypatch.setitem(buf._statistics_methods, 'mean', weighted)
    state = cl._history_buffer_getstate(buf)
    assert state['statistics_methods'] == dict(weighted=weighted,
                                               mean=weighted)
    # the buffer itself is not changed
    assert 'min' in buf._statistics_methods


def test_register_checkpoint_loader(monkeypatch):
    monkeypatch.setitem(CheckpointLoader._schemes, '', None)
    cl.register_checkpoint_loader()
    assert CheckpointLoader._schemes[''] is load_local_checkpoint


def test_patch_history_buffer_pickling(monkeypatch):
    monkeypatch.setattr(HistoryBuffer, '__getstate__',
                        cl.MMENGINE_HISTORY_BUFFER_GETSTATE)
    cl.patch_history_buffer_pickling()
    assert HistoryBuffer.__getstate__ is cl._history_buffer_getstate


# ---------------------------------------------------------- bad files
def test_missing_and_empty_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        load_local_checkpoint(str(tmp_path / 'no.pth'))
    assert str(err.value) == f'{tmp_path}/no.pth can not be found.'
    with pytest.raises(FileNotFoundError):
        load_local_checkpoint(str(tmp_path))  # a folder
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(CorruptCheckpointError) as err:
        load_local_checkpoint(tmp_path / 'empty.pth')
    assert str(err.value) == (
        f'{tmp_path}/empty.pth: empty file (0 bytes), not a checkpoint')
    # one byte is not empty: read (and refused as unreadable)
    (tmp_path / 'one.pth').write_bytes(b'x')
    with pytest.raises(CorruptCheckpointError,
                       match='one.pth: not a readable'):
        load_local_checkpoint(tmp_path / 'one.pth')
    # ~ is expanded
    monkeypatch.setenv('HOME', str(tmp_path))
    torch.save(dict(state_dict={}), str(tmp_path / 'home.pth'))
    assert load_local_checkpoint('~/home.pth') == dict(state_dict={})


def test_unreadable_files_messages(tmp_path, untrusted):
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'\x80\x02}q\x00.garbage')
    with pytest.raises(CorruptCheckpointError) as err:
        load_local_checkpoint(str(bad))
    assert str(err.value) == (
        f'{bad}: truncated, corrupt or not a PyTorch checkpoint (13 bytes, '
        'not a zip): RuntimeError: Invalid magic number; corrupt file?')
    assert isinstance(err.value.__cause__, RuntimeError)
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict={'w': torch.zeros(64)}), str(good))
    data = good.read_bytes()
    half = tmp_path / 'half.pth'
    half.write_bytes(data[:len(data) - 30])
    with pytest.raises(CorruptCheckpointError) as err:
        load_local_checkpoint(str(half))
    assert str(err.value).startswith(
        f'{half}: truncated, corrupt or not a PyTorch checkpoint '
        f'({len(data) - 30} bytes, ')


def test_checkpoint_from_a_newer_torch_says_so(tmp_path, untrusted):
    """A format version above this torch's: its message whole (the
    versions and the fix), not 'truncated, corrupt'."""
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict={'w': torch.zeros(4)}), str(good))
    newer = tmp_path / 'newer.pth'
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(newer, 'w') as out:
        for info in zin.infolist():
            data = zin.read(info)
            out.writestr(info, b'99\n' if info.filename.endswith(
                '/version') else data)
    with pytest.raises(CorruptCheckpointError) as err:
        load_local_checkpoint(str(newer))
    msg = str(err.value)
    assert msg.startswith(f'{newer}: written by a newer PyTorch than this '
                          f'one ({torch.__version__}): Attempted to read a '
                          'PyTorch file with version 99'), msg
    with pytest.raises(RuntimeError) as said:  # torch's own words
        torch.load(str(newer), weights_only=True)
    torch_says = str(said.value)
    assert msg.endswith(torch_says[torch_says.find('Attempted'):].strip())
    assert 'corrupt' not in msg, msg


def test_unpickling_error_without_a_global(tmp_path, monkeypatch,
                                           untrusted):
    path = tmp_path / 'x.pth'
    torch.save({}, str(path))

    def fail(*args, **kwargs):
        raise pickle.UnpicklingError('WeightsUnpickler error: bad opcode '
                                     'somewhere in the stream of this file')

    monkeypatch.setattr(cl.torch, 'load', fail)
    with pytest.raises(CorruptCheckpointError) as err:
        load_local_checkpoint(str(path))
    size = os.path.getsize(path)
    assert str(err.value) == (
        f'{path}: not a readable PyTorch checkpoint ({size} bytes, zip '
        'archive): bad opcode somewhere in the stream of this file')
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)


def test_memory_error_is_not_a_corrupt_file(tmp_path, monkeypatch):
    path = tmp_path / 'x.pth'
    torch.save({}, str(path))

    def fail(*args, **kwargs):
        raise MemoryError('out of memory')

    monkeypatch.setattr(cl.torch, 'load', fail)
    with pytest.raises(MemoryError):
        load_local_checkpoint(str(path))


@pytest.fixture
def load_calls(monkeypatch):
    """The keyword arguments of every ``torch.load`` of the loader."""
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(cl.torch, 'load', spy)
    return calls


def test_map_location_is_passed(tmp_path, load_calls):
    path = tmp_path / 'x.pth'
    torch.save(dict(state_dict={}), str(path))
    load_local_checkpoint(str(path), map_location='cpu')
    assert load_calls == [dict(map_location='cpu', weights_only=True)]


@pytest.mark.parametrize('obj,kind', [(torch.zeros(3), 'Tensor'),
                                      ([1, 2], 'list')])
def test_a_non_dict_is_refused(tmp_path, obj, kind):
    path = tmp_path / 'x.pth'
    torch.save(obj, str(path))
    with pytest.raises(CorruptCheckpointError) as err:
        load_local_checkpoint(str(path))
    assert str(err.value) == (
        f'{path}: holds a {kind}, not a checkpoint dict (save '
        'model.state_dict() or an mmengine checkpoint, not the object '
        'itself)')
    # an OrderedDict is a dict
    torch.save(collections.OrderedDict(w=torch.ones(1)), str(path))
    assert list(load_local_checkpoint(str(path))) == ['w']


# --------------------------------------------------------------- fields
def _refusal(field, kind, expected):
    return (f"f.pth: field '{field}' is a {kind}, not {expected}; the file "
            'is not a checkpoint mmengine can load (damaged, or written by '
            'another program)')


@pytest.mark.parametrize('ckpt,message', [
    (dict(state_dict=(1, )),
     _refusal('state_dict', 'tuple',
              'a dict of parameter names to tensors')),
    (dict(meta=3), _refusal('meta', 'int', 'a dict')),
    (dict(optimizer=[1]), _refusal('optimizer', 'list', 'a dict')),
    (dict(message_hub='x'), _refusal('message_hub', 'str', 'a dict')),
    (dict(meta=dict(dataset_meta=('a', ))),
     _refusal('meta.dataset_meta', 'tuple',
              "a dict (e.g. {'classes': (...)})")),
    (dict(meta=dict(dataset_meta=dict(classes={'a'}))),
     _refusal('meta.dataset_meta.classes', 'set', 'a list of class names')),
    (dict(param_schedulers='step'),
     _refusal('param_schedulers', 'str', 'a list')),
    (dict(param_schedulers=3), _refusal('param_schedulers', 'int', 'a list')),
])
def test_wrong_fields(ckpt, message):
    with pytest.raises(CorruptCheckpointError) as err:
        check_checkpoint_fields(ckpt, 'f.pth')
    assert str(err.value) == message


@pytest.mark.parametrize('ckpt', [
    dict(state_dict={}),
    dict(state_dict=collections.OrderedDict(a=torch.ones(1))),
    dict(state_dict={'m._extra_state': 'anything', 'w': torch.ones(1)}),
    dict(meta=None, optimizer=None, message_hub=None, param_schedulers=None),
    dict(meta={}, optimizer={}, message_hub={}),
    # a plain state dict whose parameters carry the field names
    dict(meta=torch.ones(1), optimizer=torch.ones(1),
         message_hub=torch.ones(1), param_schedulers=torch.ones(1)),
    dict(meta=dict(dataset_meta=None)),
    dict(meta=dict(dataset_meta={})),
    dict(meta=dict(dataset_meta=dict(classes=None))),
    dict(meta=dict(dataset_meta=dict(classes=['a']))),
    dict(meta=dict(dataset_meta=dict(classes=('a', )))),
    dict(param_schedulers=[]),
    dict(param_schedulers=()),
    dict(param_schedulers={}),
])
def test_right_fields(ckpt):
    check_checkpoint_fields(ckpt, 'f.pth')


@pytest.mark.parametrize('count,names,more', [
    (1, 'k0 (int)', ''),
    (3, 'k0 (int), k1 (int), k2 (int)', ''),
    (4, 'k0 (int), k1 (int), k2 (int)', ' ...'),
])
def test_odd_state_dict_values(count, names, more):
    state = {f'k{i}': i for i in range(count)}
    state['w'] = torch.ones(1)
    state['x_extra_state'] = 5  # an extra state may be anything
    with pytest.raises(CorruptCheckpointError) as err:
        check_checkpoint_fields(dict(state_dict=state), 'f.pth')
    assert str(err.value) == (
        f"f.pth: field 'state_dict' holds {count} value(s) that are not "
        f'tensors: {names}{more}')


def test_odd_state_dict_keys_are_named_as_text():
    with pytest.raises(CorruptCheckpointError,
                       match=r'holds 1 value\(s\).*: 7 \(str\)$'):
        check_checkpoint_fields(dict(state_dict={7: 'x'}), 'f.pth')


# -------------------------------------------------------------- weights
def test_non_finite_message_and_limits():
    state = collections.OrderedDict()
    state['a'] = torch.tensor([float('nan'), 1.0, float('inf'),
                               -float('inf')])
    state['b'] = torch.ones(2)
    state['c'] = torch.tensor([1 + 0j, complex(float('nan'), 0)])
    state['n'] = torch.tensor([1, 2])  # integers: not weights
    state['s'] = 'text'
    with pytest.raises(NonFiniteWeightsError) as err:
        check_finite_weights(dict(state_dict=state), 'f.pth')
    assert str(err.value) == (
        'f.pth: 2 of 3 weight tensors hold NaN or Inf (a: 1 NaN, 2 Inf of '
        '4; c: 1 NaN, 0 Inf of 2); a model with these weights finds '
        'nothing. The training that wrote it diverged: use an earlier '
        'checkpoint')
    # a plain state dict is checked the same way
    with pytest.raises(NonFiniteWeightsError, match='2 of 3 weight'):
        check_finite_weights(state, 'f.pth')
    # exactly max_names bad tensors: all named, no "more"
    with pytest.raises(NonFiniteWeightsError) as err:
        check_finite_weights(state, 'f.pth', max_names=2)
    assert 'more' not in str(err.value)
    with pytest.raises(NonFiniteWeightsError) as err:
        check_finite_weights(state, 'f.pth', max_names=1)
    assert '(a: 1 NaN, 2 Inf of 4; and 1 more)' in str(err.value)
    # the default names five
    many = {f'w{i}': torch.tensor([float('nan')]) for i in range(7)}
    with pytest.raises(NonFiniteWeightsError) as err:
        check_finite_weights(many, 'f.pth')
    assert 'w4: 1 NaN' in str(err.value) and 'w5' not in str(err.value)
    assert '; and 2 more)' in str(err.value)


def test_finite_or_unreadable_weights_pass():
    check_finite_weights(dict(state_dict={'w': torch.ones(2)}), 'f.pth')
    check_finite_weights(dict(state_dict=[1]), 'f.pth')
    check_finite_weights({}, 'f.pth')


# --------------------------------------------------------------- globals
def test_untrusted_globals_are_named(tmp_path, untrusted):
    path = tmp_path / 'two.pth'
    torch.save(dict(a=_Payload(print, ('x', )),
                    b=_Payload(os.getcwd, ()),
                    c=_Payload(print, ('y', ))), str(path))
    with pytest.raises(UntrustedCheckpointError) as err:
        load_local_checkpoint(str(path))
    assert str(err.value) == (
        f'{path}: refers to the globals builtins.print, posix.getcwd, '
        'outside the allow-list of plain checkpoint data; refusing to '
        'unpickle it (that could run code from the file). If you made this '
        'file or trust its source, pass --trust-checkpoint (or set '
        'MMLESION_TRUST_CHECKPOINTS=1)')
    assert isinstance(err.value.__cause__, pickle.UnpicklingError)
    one = tmp_path / 'one.pth'
    torch.save(dict(a=_Payload(print, ('x', )), h=HistoryBuffer([1.0], [1])),
               str(one))
    with pytest.raises(UntrustedCheckpointError,
                       match=r'refers to the global builtins\.print, '):
        load_local_checkpoint(str(one))


def test_protocol_2_names_are_mapped(tmp_path, untrusted):
    # protocol 2 writes builtins as __builtin__ (GLOBAL opcodes)
    path = tmp_path / 'p2.pth'
    torch.save(dict(a=_Payload(print, ('x', ))), str(path),
               pickle_protocol=2)
    with pytest.raises(UntrustedCheckpointError,
                       match=r'refers to the global builtins\.print, '):
        load_local_checkpoint(str(path))


def test_protocol_4_pickle_is_refused_as_untrusted(tmp_path, untrusted,
                                                  monkeypatch):
    # protocol 4 frames its pickle (opcode 149), which the safe loader does
    # not read: refused as a file torch.save did not write
    path = tmp_path / 'p4.pth'
    torch.save(dict(a=_Payload(os.getcwd, ())), str(path), pickle_protocol=4)
    with pytest.raises(UntrustedCheckpointError,
                       match=r'p4\.pth: its pickle uses an instruction the '
                       r'safe loader does not read \(.*149.*--trust-'
                       r'checkpoint'):
        load_local_checkpoint(str(path))
    monkeypatch.setenv(TRUST_ENV, '1')  # the user's choice: read in full
    assert load_local_checkpoint(str(path)) == dict(a=os.getcwd())


def test_legacy_file_names_the_global_from_the_message(tmp_path, untrusted):
    path = tmp_path / 'legacy.pth'
    torch.save(dict(a=_Payload(print, ('x', ))), str(path),
               _use_new_zipfile_serialization=False)
    with pytest.raises(UntrustedCheckpointError,
                       match=r'legacy\.pth: refers to the global print, '):
        load_local_checkpoint(str(path))


def test_refused_getattr_is_quoted(tmp_path, untrusted):
    path = tmp_path / 'getattr.pth'
    torch.save(dict(a=_Payload(getattr, (HistoryBuffer, '__init__'))),
               str(path))
    with pytest.raises(UntrustedCheckpointError) as err:
        load_local_checkpoint(str(path))
    assert (f"{path}: refers to an object outside the allow-list (getattr("
            "HistoryBuffer, '__init__') is not allowed in a checkpoint (only "
            'HistoryBuffer.min/max/current/mean)), outside the allow-list'
            ) in str(err.value)


def test_short():
    short = cl._short
    assert short(ValueError('')) == 'ValueError'
    assert short(ValueError('abc\nsecond line')) == 'abc'
    assert short(ValueError('x WeightsUnpickler error:  tail. more')) == \
        'tail. more'
    # the first '. ' at or after character 40 ends the sentence
    head = 'a' * 40
    assert short(ValueError(head + '. b. c')) == head + '.'
    assert short(ValueError('a' * 39 + '. b. c')) == 'a' * 39 + '. b.'
    assert short(ValueError('a. ' + 'b' * 50)) == 'a. ' + 'b' * 50
    # the limit
    assert short(ValueError('z' * 300)) == 'z' * 300
    assert short(ValueError('z' * 301)) == 'z' * 300 + '...'
    assert short(ValueError('z' * 121), 120) == 'z' * 120 + '...'


# ---------------------------------------------------------------- trust
def _vanishing_global(tmp_path):
    """A checkpoint naming a function of a module that no longer exists."""
    mod = types.ModuleType('wt_vanishing_module')

    def make():
        return 'made'

    make.__module__ = mod.__name__
    make.__qualname__ = 'make'
    mod.make = make
    sys.modules[mod.__name__] = mod
    try:
        path = tmp_path / 'vanishing.pth'
        torch.save(dict(state_dict={}, x=_Payload(make, ())), str(path))
    finally:
        del sys.modules[mod.__name__]
    return path, mod


def test_trusted_full_load_warns(tmp_path, monkeypatch):
    path, mod = _vanishing_global(tmp_path)
    logs = []
    monkeypatch.setattr(cl, 'print_log',
                        lambda msg, **kw: logs.append((msg, kw)))
    monkeypatch.setenv(TRUST_ENV, '1')
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    assert load_local_checkpoint(str(path))['x'] == 'made'
    assert logs == [(
        f'{path}: refers to the global wt_vanishing_module.make; unpickling '
        'it fully because checkpoints are trusted '
        '(MMLESION_TRUST_CHECKPOINTS=1 / --trust-checkpoint): this runs any '
        'code the file names.', dict(logger='current', level=30))]


def test_trusted_full_load_failure(tmp_path, monkeypatch):
    path, _ = _vanishing_global(tmp_path)
    monkeypatch.setattr(cl, 'print_log', lambda msg, **kw: None)
    monkeypatch.setenv(TRUST_ENV, '1')
    with pytest.raises(CorruptCheckpointError) as err:
        load_local_checkpoint(str(path), map_location='cpu')
    size = os.path.getsize(path)
    assert str(err.value) == (
        f'{path}: cannot be unpickled ({size} bytes, zip archive): '
        "ModuleNotFoundError: No module named 'wt_vanishing_module'")
    assert isinstance(err.value.__cause__, ModuleNotFoundError)
    monkeypatch.setenv(TRUST_ENV, '0')
    with pytest.raises(UntrustedCheckpointError):
        load_local_checkpoint(str(path))


# ---------------------------------------------------------- model check
class _Versioned(nn.Module):
    """Renames its old key ``w`` when the checkpoint says version 1."""
    _version = 2

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              *args):
        if local_metadata.get('version', 2) < 2 and \
                prefix + 'w' in state_dict:
            state_dict[prefix + 'weight'] = state_dict.pop(prefix + 'w')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      *args)


def test_metadata_survives_revise_keys():
    old = collections.OrderedDict([('module.w', torch.ones(2))])
    old._metadata = collections.OrderedDict([('', dict(version=1))])
    model = _Versioned()
    check_state_dict_matches(model, dict(state_dict=old), 'old.pth')
    assert model.weight.tolist() == [1.0, 1.0]
    # no metadata: a current module, the old key does not fit
    plain = collections.OrderedDict([('w', torch.ones(2))])
    with pytest.raises(CheckpointMismatchError):
        check_state_dict_matches(_Versioned(), plain, 'plain.pth')


def test_revise_keys_and_non_mapping_state():
    model = nn.Linear(2, 1)
    state = {'net.weight': torch.ones(1, 2), 'net.bias': torch.ones(1)}
    check_state_dict_matches(model, state, 'a.pth',
                             revise_keys=[(r'^net\.', '')])
    assert model.weight.tolist() == [[1.0, 1.0]]
    with pytest.raises(CheckpointMismatchError):
        check_state_dict_matches(model, state, 'a.pth')
    with pytest.raises(CheckpointMismatchError) as err:
        check_state_dict_matches(model, dict(state_dict=[1]), 'a.pth')
    assert str(err.value) == ("a.pth: 'state_dict' is a list, not a mapping "
                              'of parameter names to tensors')


def test_allowed_missing_prefixes():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    own = {k: v.clone() for k, v in model.state_dict().items()}
    state = {'0.weight': torch.ones(2, 2), '0.bias': torch.ones(2)}
    check_state_dict_matches(model, state, 'a.pth', allowed_missing=['1.'])
    assert model[0].weight.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert torch.equal(model[1].weight, own['1.weight'])
    with pytest.raises(CheckpointMismatchError, match='1.weight'):
        check_state_dict_matches(model, state, 'a.pth')
    with pytest.raises(CheckpointMismatchError, match='1.bias'):
        check_state_dict_matches(model, state, 'a.pth',
                                 allowed_missing=['1.w'])
    # a key present in the checkpoint is not replaced by the model's
    state = dict(state, **{'1.weight': torch.full((1, 2), 5.0),
                           '1.bias': torch.zeros(1)})
    check_state_dict_matches(model, state, 'a.pth', allowed_missing=['1.'])
    assert model[1].weight.tolist() == [[5.0, 5.0]]


def test_mismatch_message_and_cut_lines():
    model = nn.Linear(2, 1)
    state = {'weight': torch.ones(1, 2), 'bias': torch.ones(1),
             'x' * 30: torch.ones(1)}
    with pytest.raises(CheckpointMismatchError) as err:
        check_state_dict_matches(model, state, 'a.pth')
    text = str(err.value)
    assert text.startswith(
        'a.pth: the checkpoint does not fit the model Linear (a checkpoint '
        'of another model or config?); refusing to run with randomly '
        'initialised weights. ')
    lines = text.split('weights. ', 1)[1].split('\n')
    assert all(line.strip() for line in lines)
    assert any('x' * 30 in line for line in lines)
    assert not any(line.endswith(' ...') for line in lines)
    longest = max(len(line) for line in lines)
    with pytest.raises(CheckpointMismatchError) as err:
        check_state_dict_matches(model, state, 'a.pth', max_chars=longest)
    assert str(err.value) == text
    with pytest.raises(CheckpointMismatchError) as err:
        check_state_dict_matches(model, state, 'a.pth',
                                 max_chars=longest - 1)
    cut = str(err.value).split('weights. ', 1)[1].split('\n')
    assert max(len(line) for line in cut) == longest - 1 + len(' ...')
    assert any(line.endswith(' ...') for line in cut)
    assert isinstance(err.value.__cause__, RuntimeError)


# ------------------------------------------------------ model checkpoint
def test_load_model_checkpoint_switches(tmp_path, untrusted):
    model = nn.Linear(2, 1)
    state = {'weight': torch.tensor([[float('nan'), 1.0]]),
             'bias': torch.ones(1)}
    path = tmp_path / 'nan.pth'
    torch.save(dict(state_dict=state, meta={}), str(path))
    with pytest.raises(NonFiniteWeightsError, match='nan.pth'):
        load_model_checkpoint(model, str(path))
    ckpt = load_model_checkpoint(model, str(path), check_finite=False)
    assert ckpt['meta'] == {} and torch.isnan(model.weight[0, 0])
    # partial: what fits is loaded, the rest only logged
    part = tmp_path / 'part.pth'
    torch.save(dict(state_dict={'bias': torch.full((1, ), 3.0),
                                'other': torch.ones(1)}), str(part))
    with pytest.raises(CheckpointMismatchError):
        load_model_checkpoint(model, str(part))
    load_model_checkpoint(model, str(part), allow_partial=True)
    assert model.bias.tolist() == [3.0]


def test_load_model_checkpoint_of_a_non_dict(monkeypatch):
    monkeypatch.setattr(cl, '_load_checkpoint', lambda f, **kw: [1, 2])
    with pytest.raises(CorruptCheckpointError) as err:
        load_model_checkpoint(nn.Linear(2, 1), 'http://x/y.pth')
    assert str(err.value) == ('http://x/y.pth: holds a list, not a '
                              'checkpoint dict')
    calls = []
    monkeypatch.setattr(
        cl, '_load_checkpoint',
        lambda f, **kw: calls.append(kw) or dict(meta=3))
    with pytest.raises(CorruptCheckpointError) as err:
        load_model_checkpoint(nn.Linear(2, 1), 'y.pth')
    # the file is named (URLs are loaded without load_local_checkpoint)
    assert str(err.value).startswith("y.pth: field 'meta' is a int")
    assert calls == [dict(map_location='cpu')]


# ------------------------------------------------------ more boundaries
def test_state_written_by_mmengine_first_is_cleaned():
    buf = HistoryBuffer([1.0], [1])
    # mmengine's own __getstate__ leaves 'statistics_methods' in __dict__
    cl.MMENGINE_HISTORY_BUFFER_GETSTATE(buf)
    assert 'statistics_methods' in buf.__dict__
    state = cl._history_buffer_getstate(buf)
    assert 'statistics_methods' not in state
    assert 'statistics_methods' in buf.__dict__  # a copy was cleaned


def test_trusted_full_load_keeps_map_location(tmp_path, monkeypatch,
                                             load_calls):
    path, mod = _vanishing_global(tmp_path)
    monkeypatch.setattr(cl, 'print_log', lambda msg, **kw: None)
    monkeypatch.setenv(TRUST_ENV, '1')
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    load_local_checkpoint(str(path), map_location='cpu')
    assert load_calls == [dict(map_location='cpu', weights_only=True),
                          dict(map_location='cpu', weights_only=False)]


def test_trusted_log_names_every_global(tmp_path, monkeypatch):
    logs = []
    monkeypatch.setattr(cl, 'print_log',
                        lambda msg, **kw: logs.append(msg))
    monkeypatch.setenv(TRUST_ENV, '1')
    two = tmp_path / 'two.pth'
    torch.save(dict(a=_Payload(print, ('x', )), b=_Payload(os.getcwd, ())),
               str(two))
    load_local_checkpoint(str(two))
    assert logs[-1].startswith(
        f'{two}: refers to the globals builtins.print, posix.getcwd; ')
    # a legacy file: the global is read from torch's message
    legacy = tmp_path / 'legacy.pth'
    torch.save(dict(a=_Payload(print, ('x', ))), str(legacy),
               _use_new_zipfile_serialization=False)
    load_local_checkpoint(str(legacy))
    assert logs[-1].startswith(f'{legacy}: refers to the global print; ')


def _zip_pickle(path, data):
    import zipfile
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('archive/data.pkl', data)
        zf.writestr('archive/version', b'3\n')
    return str(path)


def test_unknown_global_reads_the_opcodes(tmp_path):
    err = pickle.UnpicklingError('no global named here')
    # STACK_GLOBAL at index 2, then GLOBAL opcodes
    data = (b'\x8c\x05posix\x8c\x06system\x93'
            b'c__builtin__\nxrange\n'  # protocol 2 name of builtins.range
            b'cmy\tmod\na b\n'  # odd whitespace in the names
            b'cbuiltins\nset\n'  # allowed
            b'\x8c\x05posix\x8c\x06system\x93'  # named once
            b'.')
    path = _zip_pickle(tmp_path / 'crafted.pth', data)
    assert cl._unknown_global(path, err) == (
        'the globals posix.system, builtins.range, my\tmod.a b')
    only_allowed = _zip_pickle(tmp_path / 'allowed.pth',
                               b'cbuiltins\nset\n.')
    # nothing outside the allow-list in the opcodes: torch's message
    assert cl._unknown_global(
        only_allowed, pickle.UnpicklingError('x GLOBAL os.system y')) == \
        'the global os.system'
    assert cl._unknown_global(only_allowed, ValueError('z' * 130)) == (
        'an object outside the allow-list (' + 'z' * 120 + '...)')
    assert cl._unknown_global(only_allowed, ValueError('z' * 120)) == (
        'an object outside the allow-list (' + 'z' * 120 + ')')
    # a STACK_GLOBAL without two opcodes before it is skipped
    early = _zip_pickle(tmp_path / 'early.pth',
                        b'\x8c\x05posix\x93cbuiltins\nprint\n.')
    assert cl._unknown_global(early, err) == 'the global builtins.print'


def test_checksum_sidecar_is_verified(tmp_path):
    from mmlesion.utils.checkpoints.checksum import ChecksumMismatchError
    path = tmp_path / 'c.pth'
    torch.save(dict(state_dict={}), str(path))
    (tmp_path / 'c.pth.sha256').write_text('0' * 64 + '  c.pth\n')
    with pytest.raises(ChecksumMismatchError, match='c.pth'):
        load_local_checkpoint(str(path))


def test_model_checkpoint_errors_name_the_file(tmp_path, untrusted):
    path = tmp_path / 'meta.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}, meta='x'), str(path))
    with pytest.raises(CorruptCheckpointError) as err:
        load_model_checkpoint(nn.Linear(2, 1), str(path))
    assert str(err.value).startswith(f"{path}: field 'meta' is a str")
    other = tmp_path / 'other.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}), str(other))
    with pytest.raises(CheckpointMismatchError) as err:
        load_model_checkpoint(nn.Linear(2, 1), str(other))
    assert str(err.value).startswith(
        f'{other}: the checkpoint does not fit the model Linear')


def test_default_line_limit_is_3000_characters():
    def message(key_len):
        model = nn.Module()
        model.register_parameter('k' * key_len, nn.Parameter(torch.ones(1)))
        with pytest.raises(CheckpointMismatchError) as err:
            check_state_dict_matches(model, {}, 'a.pth')
        return str(err.value).split('weights. ', 1)[1].split('\n')

    base = 100
    lines = message(base)
    longest = max(lines, key=len)
    key_len = base + 3001 - len(longest)
    lines = message(key_len)
    cut = [line for line in lines if line.endswith(' ...')]
    assert len(cut) == 1 and len(cut[0]) == 3000 + len(' ...')
    lines = message(key_len - 1)
    assert max(len(line) for line in lines) == 3000
    assert not any(line.endswith(' ...') for line in lines)
