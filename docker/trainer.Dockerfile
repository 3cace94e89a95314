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
COPY host /src/host
COPY storage_service /src/storage_service
COPY trainer /src/trainer
COPY sim /src/sim
COPY fpga_kernels /src/fpga_kernels
# The base image's torch satisfies the torch>=2.1 requirement, so pip leaves it alone.
RUN pip install -c docker/constraints.txt /src && rm -rf /src
WORKDIR /runs
RUN useradd --system --uid 10002 --home-dir /runs nessa && chown nessa /runs
USER nessa
ENTRYPOINT ["nessa"]
CMD ["train", "--help"]
