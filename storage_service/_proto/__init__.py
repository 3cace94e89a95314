"""Generated protobuf / gRPC stubs for ``proto/nessa.proto`` (package ``nessa.v1``).

Import the modules directly (``from storage_service._proto import nessa_pb2``). Do not edit
them by hand: run ``python -m storage_service._proto.generate``.
"""
