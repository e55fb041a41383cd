# Copyright (c) mmlesion contributors. All rights reserved.
"""Allow-listed unpickling of data classes (stored mining proposals)."""
import os
import pickle

import numpy as np
import pytest

from mmlesion.methods.lens.mining.strategies import (SeriesMining,
                                                     SliceProposals, Tracklet)
from mmlesion.utils.checkpoints.results_pickle import (UntrustedResultsError,
                                                       load_allow_listed_pickle)

_CLASSES = (SeriesMining, SliceProposals, Tracklet)


class _Payload:

    def __reduce__(self):
        return (os.system, ('echo pwned', ))


def test_data_classes_round_trip(tmp_path):
    series = [
        SeriesMining('s1', 'p1', {3: np.zeros((1, 4), np.float32)},
                     tracklets=[Tracklet({3: (np.ones(4), 0.9)}, 0.9)])
    ]
    path = tmp_path / 'proposals.pkl'
    path.write_bytes(pickle.dumps(series))
    back = load_allow_listed_pickle(str(path), _CLASSES, 'proposals')
    assert back[0].series == 's1' and back[0].tracklets[0].score == 0.9
    np.testing.assert_array_equal(back[0].tracklets[0].boxes[3][0],
                                  np.ones(4))


def test_code_and_other_classes_are_refused(tmp_path):
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps([_Payload()]))
    with pytest.raises(UntrustedResultsError, match='posix.system|os.system'):
        load_allow_listed_pickle(str(path), _CLASSES, 'proposals')
    path.write_bytes(pickle.dumps(
        [SliceProposals(0, np.zeros((0, 4)), np.zeros(0))]))
    with pytest.raises(UntrustedResultsError, match='SliceProposals'):
        load_allow_listed_pickle(str(path), (Tracklet, ), 'tracklets only')
    path.write_bytes(b'\x80\x04not a pickle')
    with pytest.raises(ValueError, match='not a readable pickle'):
        load_allow_listed_pickle(str(path), _CLASSES, 'proposals')
