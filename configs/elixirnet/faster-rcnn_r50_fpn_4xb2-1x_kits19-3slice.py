# "FPN" row of ElixirNet Table 3 (KiTS19, 3 slices): the DeepLesion FPN
# baseline (faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py: same anchors,
# schedule and pipeline, "settings are the same for all experiments") on
# KiTS19 exported to DeepLesion's layout, one image per slice with tumour:
#   python tools/dataset_converters/kits19.py data/kits19/data \
#       --out data/kits19/kits19_volumes.json --export-2d data/kits19_2d \
#       --val-fraction 0 --test-fraction 0.2 --key-slices every \
#       --num-slices 3 --negatives-per-key 0
# ("We random split 80% patients ... as our training set ... and the left
# as testing set": a stable hash of the case id puts 20 % of the patients
# in the test split; there is no validation split, so no validation runs
# during training and the last epoch is the one tested.)
_base_ = './faster-rcnn_r50_fpn_4xb2-1x_deeplesion-3slice.py'

# the export's folder, as `data_root`: `--cfg-options data_root=...` (and
# tools/reproduce.py --data-root) moves both datasets
data_root = 'data/kits19_2d/'
train_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = None
val_cfg = None
val_evaluator = None
default_hooks = dict(checkpoint=dict(save_best=None))
