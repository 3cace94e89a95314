"""NeSSA storage service: the on-disk sample store, ingest, and the gRPC service around them.

Two sides live here. The *client side* (``CLIENT_MODULES``: the client, its result types, the
wire codec, the generated stubs, the name <-> enum maps) imports no server module, so a trainer
install carries only those files (``docker/trainer.Dockerfile`` copies exactly this list, and a
test checks both). Everything else (store, ingest, selections, servicer, server, data plane
server, auth, TLS) is the server side.
"""

__all__ = ["CLIENT_MODULES"]

#: The modules a client needs, and all it may import from this package.
CLIENT_MODULES = (
    "storage_service",
    "storage_service.client",
    "storage_service._client_jobs",
    "storage_service._client_types",
    "storage_service._native_channel",
    "storage_service._idle",
    "storage_service._wire",
    "storage_service._names",
    "storage_service._grpc_options",
    "storage_service._malloc",
    "storage_service._proto",
    "storage_service._proto.nessa_pb2",
    "storage_service._proto.nessa_pb2_grpc",
)
