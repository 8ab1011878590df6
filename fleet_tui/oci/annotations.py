"""OCI annotation keys fleet-tui writes and reads (image-spec annotations.md).

A rebased image records the image it was built on in its manifest: `base.name` (the
reference as given) and `base.digest` (the manifest digest OLD had). The rebaser writes
them; the release lineage reads them to tell a rebase layer from a layer of NEW's own.
"""

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"
