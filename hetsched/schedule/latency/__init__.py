"""Latency: one inference as fast as possible, and the proof of how close.

* list schedulers: :mod:`.listsched` (machinery), :mod:`.heuristics` (HEFT, PEFT, CPOP),
  :mod:`.eft` (fast EFT for large graphs), :mod:`.lpround` (LP-rounded HEFT),
  :mod:`.boundsolver` (the bounds as a solver);
* exact: :mod:`.cpsat` (+ :mod:`.cpsat_model`, :mod:`.symmetry`, :mod:`.warmstart`),
  :mod:`.milp`, :mod:`.sat`;
* search: :mod:`.localsearch`, :mod:`.lns` (+ :mod:`.neighbourhood`);
* decomposition: :mod:`.blocks`, :mod:`.segments`;
* :mod:`.portfolio` - all of them within one time budget (the default).
"""
