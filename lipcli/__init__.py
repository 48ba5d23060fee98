"""lip: lottery image priors — sparse Deep Image Prior subnetworks you can find once and reuse.

From Python: `from lipcli import api` (or `lipcli.api`): restore, prune, transfer, load_mask and
save_mask on numpy arrays and torch tensors, printing nothing (lipcli/api.py).
"""

__version__ = "0.1.0"

from . import api  # noqa: E402 - after __version__, which the modules api imports read
