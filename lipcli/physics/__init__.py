"""Degradation operators (A noise-free, A_adjoint, a separate noise model) and the tasks built on them.

Importing the package registers every task and CS matrix, one file each (CS: cs.py the operators,
cs_task.py the task).
"""
from .base import Identity, LinearPhysics, Physics
from .cs import CS_OPERATORS, CompressedSensing, GaussianCS, StructuredCS, dct_ortho
from .denoise import Denoise
from .inpaint import Inpaint
from .mri import MRI, fft2c, ifft2c
from .mri_masks import MASK_TYPES, sampling_mask
from .noise import CorruptedGaussianNoise, GaussianNoise, NoiseModel
from .superres import SR_BORDER, SuperResolution, lanczos2_kernel
from .cs_task import MedianOfMeans
from .task import TASKS, Flag, Measured, Task, grid_flags, register_task, task_flags, task_options, task_variants

__all__ = ["CS_OPERATORS", "CompressedSensing", "CorruptedGaussianNoise", "Denoise", "Flag", "GaussianCS",
           "GaussianNoise", "Identity", "Inpaint", "LinearPhysics", "MASK_TYPES", "MRI", "Measured", "MedianOfMeans",
           "NoiseModel", "Physics", "SR_BORDER", "StructuredCS", "SuperResolution", "TASKS", "Task", "dct_ortho",
           "fft2c", "grid_flags", "ifft2c", "lanczos2_kernel", "register_task", "sampling_mask", "task_flags",
           "task_options", "task_variants"]
