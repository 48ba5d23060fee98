"""lip: lottery image priors — sparse Deep Image Prior subnetworks you can find once and reuse.

From Python: `from lipcli import api`: restore, prune, transfer, load_mask and save_mask on numpy arrays
and torch tensors, printing nothing (lipcli/api.py). The package does not import it eagerly: every
module imports the package (for `__version__`), so an eager import would tie them all into one circle
and make `lip --version` load torch and every command.
"""

__version__ = "0.1.0"
VERSION_LINE = f"lip {__version__}"  # what `lip --version` prints (answered before the commands load: launch.py)
