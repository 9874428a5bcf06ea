"""The one evaluator: clean, robust, worst-case and per-class accuracy on the same images, and the records it writes.

During training (``during_training``), at test time (``robust.evaluate``) and in robustness reports (``imageset``)
every verdict is ``robust.robust_correct`` and every number an ``accuracy`` of ``metrics``; reports and tables read
the records (``perimage``, results.json) instead of recomputing them.
"""
