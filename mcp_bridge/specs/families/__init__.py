"""Image model families: what a model file is, what each family needs, how its graph is built.

Declared as data in ``workflows/families/*.json`` (README: "Model families"). API, for every tool that
runs an image model (``generate_image`` & co., ``edit_image``):

- ``detect.detect_file(path) -> Detection``: role (``checkpoint``, ``diffusion_model``,
  ``text_encoder``, ``vae``, ``unknown``) and ``family`` / ``encoder`` / ``vae`` kind, from the header
  only, cached by path + size + mtime (blocking: call off the event loop). ``detect.classify(header)``
  is the pure core.
- ``catalog.load_families(node_classes, node_inputs, comfyui_version) -> FamilyCatalog``: the families
  this ComfyUI can run (``families``), the others with the reason (``unoffered``);
  ``FamilyCatalog.for_detected(detection.family)`` gives a file's :class:`~.catalog.Family`.
- ``plan.make_plan(family, model, folder, detection, encoders, vaes, wanted_encoders, wanted_vae) ->
  Plan``: the text encoders and VAE a call runs with (``encoders``/``vaes``: installed file -> its
  Detection), or :class:`~.plan.FamilyRefused` saying what to install where.
- ``build.apply_family(prompt, plan, Sampling(guidance=...)) -> prompt``: an all-in-one graph (one
  CheckpointLoaderSimple, KSampler, EmptyLatentImage, CLIPTextEncode prompts) rebuilt with the family's
  loaders, latent, conditioning and sampling. An edit graph can start from its own all-in-one form.

Pure Python apart from reading model-file headers (through ``comfyui.headers``).
"""
