"""lip: lottery image priors — sparse Deep Image Prior subnetworks you can find once and reuse."""

__version__ = "0.1.0"
