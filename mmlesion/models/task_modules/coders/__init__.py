from .delta_zyxd_bbox_coder import DeltaZYXDBBoxCoder  # noqa: F401
