"""Training: one shared loop (`wsss.train.loop`) plus one small module per model."""

from wsss.train.loop import (LoopConfig, is_distributed, is_main_process, load_model, poly_scheduler,
                             save_model, train)

__all__ = ["LoopConfig", "train", "poly_scheduler", "save_model", "load_model", "is_distributed",
           "is_main_process"]
