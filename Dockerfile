# voxroute service image: the locked dependencies, then the project.
FROM python:3.11-slim
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY experiments ./experiments
COPY service ./service
COPY analysis ./analysis
RUN uv sync --frozen --no-dev
ENV VOXROUTE_DATA_DIR=/data
EXPOSE 8000
CMD ["uv", "run", "--no-dev", "voxroute", "serve", "--host", "0.0.0.0", "--port", "8000"]
