"""flytekitplugins-prebuilt: prebuilt (template-only) Flyte task types.

Author side (this folder, ``flytekitplugins.prebuilt``): task types and the authoring kit, flytekit
only. Runtime side (``executors/``, ``flytekitplugins.prebuilt.executors``): what runs in the images.
"""

from flytekitplugins.prebuilt.kit.images import package_version

__version__ = package_version()
