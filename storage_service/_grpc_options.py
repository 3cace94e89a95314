"""gRPC options the storage server and its client share, each with the reason it is set.

Only options that change behaviour we rely on or that measurably help streaming
(``bench/stream.py``) live here; everything else stays at gRPC's defaults.
"""

from __future__ import annotations

from grpc.experimental import ChannelOptions

__all__ = [
    "MAX_MESSAGE_BYTES",
    "SERVER_OPTIONS",
    "CHANNEL_OPTIONS",
    "server_options",
    "KEEPALIVE_CHANNEL_OPTIONS",
    "KEEPALIVE_SERVER_OPTIONS",
    "DATA_PLANE_MAX_REQUEST_BYTES",
]

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


def server_options(max_receive_bytes: int) -> tuple:
    """The storage server's main-port options: it sends batches up to MAX_MESSAGE_BYTES but
    receives only small requests and PushModel chunks, so its receive limit is
    ``max_receive_bytes`` (the larger of the two per-method limits; the servicer checks each
    method's own). gRPC refuses a larger message as soon as its length prefix arrives
    (RESOURCE_EXHAUSTED), before buffering it (with the bearer-token check before the body,
    8 concurrent 120 MiB requests without token cost the server 0-4 MiB: bench/push_memory.py)."""
    return (
        ("grpc.max_receive_message_length", int(max_receive_bytes)),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
    )

#: Client keepalive: while a call is open the client pings every 20 s and drops the connection
#: (the call fails UNAVAILABLE, which the client retries) when a ping goes unanswered for 10 s,
#: so a frozen server (``kill -STOP``, a dead host behind a live route) is noticed even when no
#: stream deadline would fire. ``max_pings_without_data`` 0: a streaming client sends no data
#: after its request, and gRPC's default (2) would stop pinging after two pings.
KEEPALIVE_CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
)

#: What a server needs to accept those pings. gRPC servers by default allow one ping per
#: 5 minutes without data and answer a third early one with GOAWAY ``too_many_pings``; a
#: stream that stalls server-side for a minute would be cut that way. 10 s is half the client's
#: interval (room for timer jitter). The server also pings its clients (every 60 s, 20 s to
#: answer) so that a vanished client's stream ends and frees its data-plane thread. Both the
#: main port and the data plane (``_native_stream.cc``) use these.
KEEPALIVE_SERVER_OPTIONS = (
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)

#: The data plane receives only StreamSamplesRequest (a name, a selection id and a few ints:
#: tens of bytes), so anything longer is refused RESOURCE_EXHAUSTED. It checks the bearer token
#: before it reads the request (``_native_stream.cc``), so an unauthenticated request of any size
#: costs it next to nothing; the gRPC C++ it is built with here (Debian's 1.51) assembles a request
#: it does read before checking the size, so a token holder's oversized request still costs about
#: its size (bench/unauth_memory.py). A gRPC memory quota would bound that, but its reclaimer
#: then cancels legitimate streams (measured), so there is none.
DATA_PLANE_MAX_REQUEST_BYTES = 64 << 10

CHANNEL_OPTIONS = _MESSAGE_LIMITS + KEEPALIVE_CHANNEL_OPTIONS + (
    # StreamSamples is unary-stream: read it on the caller's thread. By default every received
    # message is handed from the channel's polling thread to the iterating thread (a wake-up
    # and two GIL hand-offs per batch); this measured ~7 us less client CPU per message.
    (ChannelOptions.SingleThreadedUnaryStream, 1),
)
