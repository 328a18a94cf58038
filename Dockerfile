# firebreak's runtime image: the package and its console script, nothing else.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FIREBREAK_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY handlers ./handlers
COPY playbooks ./playbooks
COPY deploy/catalogue.yaml ./deploy/catalogue.yaml
RUN pip install --no-cache-dir -c constraints.txt . && useradd --uid 10001 --create-home firebreak && mkdir /data && chown firebreak /data
USER firebreak
VOLUME /data
EXPOSE 3000
CMD ["firebreak", "serve"]
