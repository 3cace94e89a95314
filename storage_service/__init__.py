"""NeSSA storage service: the on-disk sample store, ingest, and the gRPC service around them."""
