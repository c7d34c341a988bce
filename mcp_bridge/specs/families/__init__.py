"""Image model families: what a model file is (:mod:`.detect`), what each family needs and how its
graph is built (declared as data in ``workflows/families/*.json``, loaded by :mod:`.catalog`).

API for other tools (e.g. ``edit_image``):

- ``detect.detect_file(path) -> Detection`` — role (checkpoint, diffusion_model, text_encoder, vae,
  unknown), ``family`` / ``encoder`` / ``vae`` kind, read from the header only, cached by
  path + size + mtime (blocking: call off the event loop); ``detect.classify(header)`` is the pure core.
- ``catalog.load_families(...) -> FamilyCatalog`` — the families this ComfyUI can run (their nodes and
  loader types exist), each a :class:`~.catalog.Family` with its encoders, VAE, graph pieces, defaults.

Pure Python apart from reading model-file headers (through ``comfyui.headers``).
"""
