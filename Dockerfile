# The operator image, built the way the operator builds apps: dependencies first for the layer
# cache, then the code in a layer of its own, so a change to the code rebuilds and ships
# kilobytes, not the dependencies; a slim official base; a numeric non-root user; exec-form
# entrypoint so SIGTERM reaches kopf, which then stops its watches cleanly.
FROM python:3.11-slim AS dependencies
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/operator
COPY pyproject.toml /tmp/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/operator/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim
COPY --from=dependencies /opt/operator /opt/operator
COPY operator/fastapi_operator /opt/fastapi-operator/fastapi_operator
ENV PATH=/opt/operator/bin:$PATH PYTHONPATH=/opt/fastapi-operator PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "fastapi_operator"]
CMD ["run"]
