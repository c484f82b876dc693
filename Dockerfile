# The operator image, built the way the operator builds apps: dependencies first for the layer
# cache, then the code; a slim official base; a numeric non-root user; exec-form entrypoint so
# SIGTERM reaches kopf, which then stops its watches cleanly.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/operator
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && /opt/operator/bin/pip install -r requirements.txt
COPY README.md ./
COPY operator ./operator
RUN /opt/operator/bin/pip install --no-deps .

FROM python:3.11-slim
COPY --from=build /opt/operator /opt/operator
ENV PATH=/opt/operator/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["fastapi-operator"]
CMD ["run"]
