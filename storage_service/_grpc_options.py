"""gRPC options the storage server and its client share, each with the reason it is set.

Only options that change behaviour we rely on or that measurably help streaming
(``bench/stream.py``) live here; everything else stays at gRPC's defaults.
"""

from __future__ import annotations

from grpc.experimental import ChannelOptions

__all__ = ["MAX_MESSAGE_BYTES", "SERVER_OPTIONS", "CHANNEL_OPTIONS"]

#: Largest message either side accepts. A batch is capped at 64 MiB of samples by the server,
#: and gRPC's default 4 MiB limit is smaller than one 4 MiB batch plus its other columns.
MAX_MESSAGE_BYTES = 128 << 20

_MESSAGE_LIMITS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)

SERVER_OPTIONS = _MESSAGE_LIMITS + (
    ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
)

CHANNEL_OPTIONS = _MESSAGE_LIMITS + (
    # StreamSamples is unary-stream: read it on the caller's thread. By default every received
    # message is handed from the channel's polling thread to the iterating thread (a wake-up
    # and two GIL hand-offs per batch); this measured ~7 us less client CPU per message.
    (ChannelOptions.SingleThreadedUnaryStream, 1),
)
