# syntax=docker/dockerfile:1
# NeSSA storage service: `nessa serve` on Debian bookworm with Debian's XRT runtime.
#
#   docker build -f docker/storage.Dockerfile -t nessa-storage:0.1.0 \
#       --build-arg TORCH_INDEX_URL=<PyTorch CPU wheel index> .
#
# Build context: the repository root. Two stages: `build` compiles the emulated FPGA kernels
# (g++) and the data plane (gRPC C++, libgrpc++-dev) into a venv; the runtime stage copies only
# the venv and the kernel cache, plus gRPC C++'s runtime library.
# Hardware: Debian ships XRT's user-space libraries (libxrt1, libxrt-utils: xbutil, xbmgmt) but
# neither the xocl/xclmgmt kernel drivers nor the pyxrt Python binding; on a SmartSSD host,
# install AMD's XRT on the host and bind-mount /opt/xilinx/xrt (pyxrt lives there, DESIGN.md),
# pass the devices through (--device /dev/dri ... or --privileged) and use --backend xrt.

ARG DEBIAN_TAG=bookworm-20241111-slim

FROM debian:${DEBIAN_TAG} AS build
ARG TORCH_VERSION=2.13.0
# Extra index for torch only (PyTorch's CPU wheel index keeps the image small); empty: default index.
ARG TORCH_INDEX_URL=
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv g++ make libgrpc++-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/nessa/venv
ENV PATH=/opt/nessa/venv/bin:$PATH
WORKDIR /src
COPY docker/constraints.txt /src/docker/constraints.txt
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}" -c docker/constraints.txt
COPY pyproject.toml README.md /src/
COPY host /src/host
COPY storage_service /src/storage_service
COPY trainer /src/trainer
COPY sim /src/sim
COPY fpga_kernels /src/fpga_kernels
COPY nessa /src/nessa
RUN pip install -c docker/constraints.txt /src \
 && python -c "from storage_service import _data_plane as d; assert d.available(), d.unavailable_reason()"
# Build the emulated kernels now (the emulator would build them at first use otherwise).
ENV NESSA_KERNEL_CACHE=/opt/nessa/kernels
RUN cd / && python -c "from host.device.build import library_path; print(library_path())"

FROM debian:${DEBIAN_TAG}
ARG XRT_VERSION=202210.2.13.466+dfsg-8
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 openssl ca-certificates libgrpc++1.51 \
        "libxrt1=${XRT_VERSION}" "libxrt-utils=${XRT_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/nessa /opt/nessa
COPY docker/healthcheck.py docker/gen-certs.sh docker/init-store.sh /opt/nessa/docker/
RUN useradd --system --uid 10001 --home-dir /var/lib/nessa nessa \
 && mkdir -p /store /certs /var/lib/nessa && chown nessa /store /certs /var/lib/nessa
ENV PATH=/opt/nessa/venv/bin:$PATH NESSA_KERNEL_CACHE=/opt/nessa/kernels PYTHONUNBUFFERED=1
USER nessa
# 50051: the service; 50052: its data plane (StreamSamples on gRPC C++), same TLS and token.
EXPOSE 50051 50052
# TLS and a token by default: the certificate, key and token come from /certs (see compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/opt/nessa/docker/healthcheck.py", "--port", "50051", "--tls-ca", "/certs/server.pem", "--server-name", "localhost"]
ENTRYPOINT ["nessa"]
CMD ["serve", "/store", "--host", "0.0.0.0", "--port", "50051", "--data-port", "50052", "--tls-cert", "/certs/server.pem", "--tls-key", "/certs/server.key", "--token-file", "/certs/token", "--backend", "emu"]
