# One image for the API, the worker, the one-shot migrate job and the local anvil chain.
# The anvil and cast binaries come from the npm packages @foundry-rs/{anvil,cast}-linux-amd64,
# so the image is built for linux/amd64 only.
FROM python:3.11-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian trixie packages Node.js 20 and npm.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid ledger --home-dir /app --shell /usr/sbin/nologin ledger

WORKDIR /app

# npm packages: solc, the OpenZeppelin contracts and Merkle tree library, anvil and cast.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force

# Python dependencies in their own layer, read from pyproject.toml, so that a source change does
# not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The sources, filtered by .dockerignore. The install is editable because ledger.PROJECT_ROOT
# finds contracts/, migrations/ and node_modules/ next to the ledger package, here in /app.
COPY . .
RUN pip install --no-deps -e .

# /data holds deployment.json and /var/lib/anvil the chain state. Named volumes mounted there
# start with this ownership.
RUN mkdir -p /data /var/lib/anvil \
    && chown ledger:ledger /data /var/lib/anvil

USER ledger

EXPOSE 8000 8545
CMD ["ledger", "serve", "--host", "0.0.0.0", "--port", "8000"]
