"""Pruning: scores registered by name (scores.py per element, channel_scores.py per filter) and the
drivers that iterate them: imp.py (IMP), ladder.py (any score at init on IMP's sparsity ladder),
oes.py (Optimal Eye Surgeon), gan_imp.py (IMP on a generator); run.py is the one entry point. What a
mask means (element or channel view), and the exact top-k selection every driver uses, live in
lipcli/masks.py. Drivers fit targets (search.TargetSource), never images.

Importing the package registers every score: a score in a new file is imported here."""
from . import channel_scores, scores  # the registrations

__all__ = ["channel_scores", "scores"]
