"""Pruning: score functions (scores.py), exact mask selection (select.py) and the drivers that
iterate them (imp.py for IMP, ladder.py for one-shot baselines, oes.py for Optimal Eye Surgeon)."""
