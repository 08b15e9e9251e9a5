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
RUN pip install --no-cache-dir ".[postgres]"

ENTRYPOINT ["tuner"]
CMD ["--help"]
