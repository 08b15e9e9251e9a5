# One image for the init job, the workers and the dashboard of docker-compose.yml.
FROM python:3.11-slim

WORKDIR /app
# torch first, the build for the hardware the image runs on. The default is PyPI's build: on
# Linux x86_64 the CUDA one (GPU workers; several GB with its CUDA libraries), as in the README's
# GPU install. For an image without a GPU take PyTorch's CPU index, as in the README's CPU install:
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=""
RUN pip install --no-cache-dir ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "${TORCH_SPEC}"

COPY pyproject.toml README.md ./
COPY sampler ./sampler
COPY tuner ./tuner
COPY dashboard ./dashboard
COPY studies ./studies
# The sampler alone is `pip install .`; the services need the tuner on PostgreSQL (init, workers),
# the dashboard, and the humaneval task's problems (any shipped task may be tuned).
RUN pip install --no-cache-dir ".[postgres,dashboard,humaneval]"

ENTRYPOINT ["tuner"]
CMD ["--help"]
