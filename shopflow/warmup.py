"""Import the later stages' heavy libraries on a spare core while the night waits on a child process.

``dbt build`` runs in its own process and keeps about one core busy; the night's process only waits for it. The
libraries the stages after it import lazily (Great Expectations for the audit, torch and transformers for the
encoder and the language model, MLflow for the registry) take about 10 s to import on a 2-core box, so importing
them in a background thread meanwhile takes that time off the night's critical path (BENCHMARKS.md §1). So do the
preparations that need those libraries and not the warehouse, such as opening the data root's MLflow store.

Once they are imported, the objects alive then (~730,000 in a demo night: modules, classes, functions) stay until the
process ends, so they are moved out of the garbage collector's generations: every full collection later in the night
would otherwise traverse them all again.
"""

from __future__ import annotations

import gc
import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial

log = logging.getLogger(__name__)

#: What the stages after ``dbt build`` import lazily, in the order they need it.
STAGE_IMPORTS = (
    "great_expectations",  # audit
    "transformers.modeling_utils",  # embed, describe (imports torch)
    "mlflow",  # recommend (the champion's configuration), register
    "matplotlib.pyplot",  # register (the evaluation plot), report
)


def _warm_up(modules: Iterable[str], preparations: Iterable[Callable[[], object]]) -> None:
    steps = [(f"import of {module}", partial(importlib.import_module, module)) for module in modules]
    steps += [(f"preparation {getattr(prepare, '__name__', prepare)}", prepare) for prepare in preparations]
    for step, call in steps:
        try:
            call()
        except Exception as error:  # the stage that needs it repeats it and reports the error in context
            log.debug("background %s failed: %s", step, error)
    freeze_long_lived_objects()  # here, not after the join: the collection's ~0.3 s also overlaps the child process


@contextmanager
def imports_in_background(
    modules: Iterable[str] = STAGE_IMPORTS, preparations: Iterable[Callable[[], object]] = ()
) -> Iterator[threading.Thread]:
    """Import ``modules``, then call each of ``preparations``, in a daemon thread while the block runs; wait for it
    when the block ends (also on error), so nothing of it runs beside the stages after the block. The thread ends
    with :func:`freeze_long_lived_objects`. A failed import or preparation is logged at debug level and left to the
    stage that needs it."""
    thread = threading.Thread(
        target=_warm_up, args=(tuple(modules), tuple(preparations)), name="shopflow-imports", daemon=True
    )
    thread.start()
    try:
        yield thread
    finally:
        thread.join()


def freeze_long_lived_objects() -> None:
    """Collect the garbage once, then move every object still alive into the collector's permanent generation.

    Frozen objects are still freed when their last reference goes; only reference cycles among them are no longer
    collected, and the collection first makes sure none is garbage already.
    """
    gc.collect()
    gc.freeze()
