# syntax=docker/dockerfile:1
# NeSSA trainer: `nessa train` on a CUDA PyTorch base (torch comes from the base image).
#
#   docker build -f docker/trainer.Dockerfile -t nessa-trainer:0.1.0 .
#
# Build context: the repository root.

ARG PYTORCH_TAG=2.5.1-cuda12.4-cudnn9-runtime
FROM pytorch/pytorch:${PYTORCH_TAG}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY docker/constraints.txt /src/docker/constraints.txt
COPY pyproject.toml README.md /src/
COPY nessa /src/nessa
COPY host /src/host
COPY trainer /src/trainer
# The storage service's client side only (storage_service.CLIENT_MODULES; a test keeps the two
# lists equal): the trainer image carries no server code. The build skips the server's optional
# C extensions, whose sources are not here.
COPY storage_service/__init__.py storage_service/client.py storage_service/_client_jobs.py storage_service/_client_types.py \
     storage_service/_native_channel.py storage_service/_wire.py storage_service/_names.py \
     storage_service/_grpc_options.py storage_service/_malloc.py storage_service/_idle.py /src/storage_service/
COPY storage_service/_proto/__init__.py storage_service/_proto/nessa_pb2.py storage_service/_proto/nessa_pb2_grpc.py \
     /src/storage_service/_proto/
# The base image's torch satisfies the torch>=2.1 requirement, so pip leaves it alone.
RUN pip install -c docker/constraints.txt /src && rm -rf /src
WORKDIR /runs
RUN useradd --system --uid 10002 --home-dir /runs nessa && chown nessa /runs
USER nessa
ENTRYPOINT ["nessa"]
CMD ["train", "--help"]
