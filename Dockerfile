# One image for the init job, the workers and the dashboard of docker-compose.yml.
FROM python:3.11-slim

WORKDIR /app
# torch first: pick the build for your hardware (this is PyPI's default, CUDA on x86_64 Linux).
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install --no-cache-dir "${TORCH_SPEC}"

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
