"""Tools that work on a source checkout of flytekitplugins-prebuilt: build the task types' images (``building``),
publish and release them (``releasing``), fill a wheelhouse for offline builds (``wheelhouse``).

Not in the wheel: setup.py finds the packages of ``plugins/`` and ``executors/`` only, and an installed package has
no Dockerfiles to build from. The Makefile reaches these through ``flyte-prebuilt images ...``
(``plugins/cli/images.py``), which imports them from the checkout it runs from, and says so when there is none.
"""
