"""Studies that run whole predictions, on top of everything else.

* :mod:`.frontier`: ``python -m lit_sampler frontier``, quality against network calls over a grid
  of schedules (:func:`run_frontier`);
* :mod:`.calibrate`: ``python -m lit_sampler calibrate``, the error bars' scale fitted on held-out
  data (:func:`run_calibrate`);
* :mod:`.benchmarks`: throughput of the real ``predict`` path against a bare loop
  (``scripts/benchmark.py``, docs/benchmarks.md).

Names are imported on first use.
"""

from __future__ import annotations

from .._imports import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "run_frontier": ".frontier",
    "run_calibrate": ".calibrate",
})
