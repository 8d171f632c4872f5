"""Training: one shared loop (`wsss.train.loop`) plus one small module per model."""

from wsss.distributed import is_distributed, is_main_process
from wsss.train.loop import LoopConfig, TrainingRecipe, poly_scheduler, train
from wsss.train.model_files import load_model, save_model

__all__ = ["LoopConfig", "TrainingRecipe", "train", "poly_scheduler", "save_model", "load_model",
           "is_distributed", "is_main_process"]
