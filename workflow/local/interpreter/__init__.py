"""The one seam over moto 5.2.5's private ASL interpreter: nothing else in `workflow` imports moto.

- `moto_api`: the compat pin, the light import and every private moto name used (checked by
  `check_compat()` when an engine is created, never at import).
- `host`: what the patched interpreter asks of the engine (`ExecutionHost`), found on the
  execution's event manager, plus error naming.
- `tasks`: the Task state classes that call the engine's handlers and mocks.
- `fixes`, `data_fixes`: guarded patches, each naming the moto code it corrects.
- `patches`: `apply_engine_patches()`, the one function that applies every engine patch.
- `worker`: the execution worker and event manager the engine drives.

Importing this package imports nothing; the modules import moto.
"""
