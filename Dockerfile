# syntax=docker/dockerfile:1
#
# The ecs-delegate image: the delegate (and, in the same distribution, the reference
# manager and the sandbox CLI) installed from a wheel, run as an unprivileged user under
# tini, with a read-only root filesystem in mind.
#
#   docker build -t ecs-delegate .
#   docker build --build-arg DELEGATE_EXTRAS=sandbox -t ecs-delegate:sandbox .   # + moto
#
# The Debian release is pinned (slim-bookworm rather than the floating slim tag) so the
# pinned tini package below exists: `3.11-slim` moves to a new Debian release without notice.

# ---- stage 1: build the wheel -------------------------------------------------------------
FROM python:3.11-slim-bookworm AS build

# No .pyc files or pip caches: nothing from this stage is kept but /dist.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the wheel is made of (see .dockerignore): tests, docs and deploy/ stay out, so
# editing them does not invalidate the build cache.
COPY pyproject.toml README.md ./
COPY agent/ agent/
COPY tasks/ tasks/
COPY manager/ manager/
COPY sandbox/ sandbox/
COPY wire/ wire/
COPY cli/ cli/
# --no-deps: the wheel alone; its dependencies are resolved once, in the final stage.
RUN pip wheel --no-deps --wheel-dir /dist .

# ---- stage 2: the terraform binary, pinned and checked -----------------------------------
# Terraform steps run the `terraform` binary. One release, pinned by version and by the
# SHA-256 of HashiCorp's zip (from its terraform_<version>_SHA256SUMS): a download that
# does not match fails the build. To move to another release, pass both build args, e.g.
#   docker build --build-arg TERRAFORM_VERSION=1.11.4 \
#                --build-arg TERRAFORM_SHA256_AMD64=<sum of the linux_amd64 zip> .
# Python fetches and unzips (this image has no curl or unzip), so nothing is installed and
# only the binary is copied into the runtime image.
FROM python:3.11-slim-bookworm AS terraform

ARG TERRAFORM_VERSION=1.11.4
ARG TERRAFORM_SHA256_AMD64=1ce994251c00281d6845f0f268637ba50c0005657eb3cf096b92f753b42ef4dc
ARG TERRAFORM_SHA256_ARM64=a43d1d0da9b9bab214a8305a39db0e40869572594ccf50c416a7756499143633
# Set by BuildKit to the platform being built (amd64 when built without --platform).
ARG TARGETARCH=amd64

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /terraform
RUN case "${TARGETARCH}" in \
        amd64) sum="${TERRAFORM_SHA256_AMD64}" ;; \
        arm64) sum="${TERRAFORM_SHA256_ARM64}" ;; \
        *) echo "no Terraform checksum for ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
    && python -c 'import hashlib, io, sys, urllib.request, zipfile; \
url, want = sys.argv[1:3]; \
data = urllib.request.urlopen(url, timeout=300).read(); \
got = hashlib.sha256(data).hexdigest(); \
sys.exit(f"{url}: SHA-256 {got}, expected {want}") if got != want else None; \
zipfile.ZipFile(io.BytesIO(data)).extract("terraform", ".")' \
        "https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/terraform_${TERRAFORM_VERSION}_linux_${TARGETARCH}.zip" \
        "${sum}" \
    && chmod 0755 terraform \
    && ./terraform version

# ---- stage 3: the runtime image -----------------------------------------------------------
FROM python:3.11-slim-bookworm

# Extras to install with the wheel: "awscli" (the AWS CLI that shell steps call) for the
# delegate; "sandbox" adds moto for `delegate sandbox` (used by deploy/docker-compose.yml,
# never in production) and includes the AWS CLI too.
ARG DELEGATE_EXTRAS="awscli"

# Bytecode would be written into the read-only site-packages; unbuffered output so log
# lines reach awslogs / `docker logs` as they are written, not when a buffer fills.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DELEGATE_STATE_DIR=/var/lib/ecs-delegate \
    HOME=/var/lib/ecs-delegate \
    HEALTH_PORT=8080

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# tini is PID 1: it forwards SIGTERM from `docker stop` / ECS to the delegate (a Python
# PID 1 would ignore default-action signals) and reaps zombies from INIT_SCRIPT and git.
# git: Terraform steps clone their configuration with it, as git manifest sources fetch
# with it (bookworm's 2.39 series, pinned like tini). No compilers: every dependency ships
# a manylinux wheel.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-* git=1:2.39.* \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid (not a name) so Kubernetes-style runAsNonRoot checks and host file ownership
# are predictable. The state directory is created here, owned by that user, because ECS
# and Docker copy a VOLUME's ownership and mode from the image into the fresh volume:
# without this the volume would be root-owned and 0755.
RUN groupadd --system --gid 10001 delegate \
    && useradd --system --uid 10001 --gid delegate --no-create-home \
        --home-dir /var/lib/ecs-delegate --shell /usr/sbin/nologin delegate \
    && install -d -o delegate -g delegate -m 0700 /var/lib/ecs-delegate

COPY --from=terraform /terraform/terraform /usr/local/bin/terraform
COPY --from=build /dist/ /tmp/dist/
# A one-line requirements file names the wheel built above (the glob) with the requested
# extras appended as `wheel[extra]`; the wheel's own pins decide the dependency versions.
# `delegate --help` proves the entry point resolves before the image is tagged.
RUN printf '%s%s\n' /tmp/dist/*.whl "${DELEGATE_EXTRAS:+[${DELEGATE_EXTRAS}]}" \
        > /tmp/dist/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/dist/requirements.txt \
    && rm -rf /tmp/dist \
    && delegate --help > /dev/null

# The only writable paths when run with `docker run --read-only` or
# `readonlyRootFilesystem: true`: scratch space and the delegate's state (outbox spill,
# git checkouts). Declared so an orchestrator mounts them and ECS seeds their permissions.
VOLUME ["/tmp", "/var/lib/ecs-delegate"]
WORKDIR /var/lib/ecs-delegate

USER 10001:10001

# The health port (liveness /healthz, readiness, /metrics); the delegate itself only
# connects out to the manager.
EXPOSE 8080

# curl is not in the slim image; python's urllib is. urlopen raises on any non-2xx answer
# or refused connection, so the exit status is the verdict.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HEALTH_PORT', '8080'), timeout=4)"]

# tini forwards signals to the delegate and reaps children; `docker run IMAGE manager serve`
# or `... sandbox` reuse the same image for the other commands.
ENTRYPOINT ["/usr/bin/tini", "--", "delegate"]
CMD ["run"]
