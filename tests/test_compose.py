"""docker-compose.yml, Dockerfile and .dockerignore: schema validity and the project's rules.

The Compose Specification JSON schema comes from the npm package dclint 3.1.0, which ships the
compose-spec project's schema/compose-spec.json as schemas/compose.schema.json. There is no Docker
engine here, so the stack itself is not started: these tests check the files.
"""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA_FILE = ROOT / "node_modules" / "dclint" / "schemas" / "compose.schema.json"

SERVICES = {"postgres", "anvil", "migrate", "api", "worker"}
APP_SERVICES = ("migrate", "api", "worker")
ANVIL_BINARY = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
EXPECTED_DATABASE_URL = "postgresql+psycopg://ledger:ledger@postgres:5432/ledger"

# Values for the required variables, used where the file must be interpolated as Compose would.
SAMPLE_ENVIRONMENT = {
    "LEDGER_ANCHORER_PRIVATE_KEY": "0x" + "ab" * 32,
    "LEDGER_COLLECTOR_API_KEY": "lk_0123456789abcdef_" + "cd" * 32,
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def schema_validator() -> Draft7Validator:
    if not SCHEMA_FILE.is_file():
        pytest.fail(
            f"{SCHEMA_FILE} is missing: the Compose schema comes from the npm package "
            "dclint 3.1.0, install it with `npm ci`"
        )
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


# --- Compose variable interpolation ------------------------------------------------------------

_VARIABLE_RE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    pass


def interpolate_string(value: str, environment: dict[str, str]) -> str:
    """Apply Compose interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR:?error}, ${VAR:+other}.

    The forms without a colon react to an unset variable only. Variables nested inside a default
    are not expanded, which this file does not need.
    """

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("name") or match.group("bare")
        operator, argument = match.group("operator"), match.group("argument")
        current = environment.get(name)
        unset_or_empty = current is None or current == ""
        missing = unset_or_empty if operator and operator.startswith(":") else current is None
        if operator in (":-", "-"):
            return argument if missing else current
        if operator in (":?", "?"):
            if missing:
                raise MissingVariable(f"{name}: {argument}")
            return current
        if operator in (":+", "+"):
            return "" if missing else argument
        return current or ""

    return _VARIABLE_RE.sub(substitute, value)


def interpolate(node, environment: dict[str, str]):
    if isinstance(node, str):
        return interpolate_string(node, environment)
    if isinstance(node, list):
        return [interpolate(item, environment) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, environment) for key, value in node.items()}
    return node


def test_interpolation_helper_follows_compose_rules():
    environment = {"SET": "value", "EMPTY": ""}

    assert interpolate_string("a$$b", environment) == "a$b"
    assert interpolate_string("${SET}/$SET", environment) == "value/value"
    assert interpolate_string("${EMPTY:-fallback}|${EMPTY-fallback}", environment) == "fallback|"
    assert interpolate_string("${UNSET:-fallback}", environment) == "fallback"
    assert interpolate_string("${SET:?needed}", environment) == "value"
    with pytest.raises(MissingVariable, match="needed"):
        interpolate_string("${EMPTY:?needed}", environment)


# --- Schema ------------------------------------------------------------------------------------


def test_schema_is_compose_specification(schema_validator):
    assert schema_validator.schema["title"] == "Compose Specification"
    assert schema_validator.schema["$id"] == "compose_spec.json"


def schema_errors(validator: Draft7Validator, document: dict) -> list[str]:
    errors = validator.iter_errors(document)
    return [f"{list(error.absolute_path)}: {error.message}" for error in errors]


def test_compose_file_matches_schema(compose, schema_validator):
    assert schema_errors(schema_validator, compose) == []


def test_interpolated_compose_matches_schema(compose, schema_validator):
    resolved = interpolate(compose, SAMPLE_ENVIRONMENT)
    assert schema_errors(schema_validator, resolved) == []


@pytest.mark.parametrize(
    "breakage",
    [
        "unknown service key",
        "bad depends_on condition",
        "ports as a mapping",
        "unknown top-level key",
    ],
)
def test_schema_rejects_broken_compose(compose, schema_validator, breakage):
    broken = copy.deepcopy(compose)
    if breakage == "unknown service key":
        broken["services"]["api"]["dependson"] = ["migrate"]
    elif breakage == "bad depends_on condition":
        broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    elif breakage == "ports as a mapping":
        broken["services"]["api"]["ports"] = {"8000": "8000"}
    else:
        broken["servicez"] = {}

    assert not schema_validator.is_valid(broken)


# --- Services ----------------------------------------------------------------------------------


def test_services_are_the_expected_set(compose):
    assert set(compose["services"]) == SERVICES


def published_ports(service: dict) -> list:
    return service.get("ports", [])


def test_published_ports_bind_loopback(compose):
    published = 0
    for name, service in compose["services"].items():
        for port in published_ports(service):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
                continue
            port = str(port)
            assert port.startswith("127.0.0.1:"), f"{name}: {port} does not bind 127.0.0.1"
            assert port.count(":") == 2, f"{name}: {port} is not host_ip:host_port:container_port"

    assert published == 2


def test_api_and_anvil_published_at_documented_ports(compose):
    assert published_ports(compose["services"]["api"]) == ["127.0.0.1:8000:8000"]
    assert published_ports(compose["services"]["anvil"]) == ["127.0.0.1:8545:8545"]
    for name in ("postgres", "migrate", "worker"):
        assert published_ports(compose["services"][name]) == [], name


def test_no_host_network_or_privileged_mode(compose):
    for name, service in compose["services"].items():
        assert service.get("network_mode") != "host", name
        assert not service.get("privileged", False), name


def test_migrate_runs_before_api_and_worker(compose):
    services = compose["services"]

    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["restart"] == "no"


def test_migrate_waits_for_database_and_chain(compose):
    depends_on = compose["services"]["migrate"]["depends_on"]

    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["anvil"]["condition"] in ("service_started", "service_healthy")
    assert "healthcheck" in compose["services"]["postgres"]
    if depends_on["anvil"]["condition"] == "service_healthy":
        assert "healthcheck" in compose["services"]["anvil"]


def test_migrate_command(compose):
    command = compose["services"]["migrate"]["command"]
    script = command[-1] if isinstance(command, list) else command

    assert script == "ledger migrate && ledger contracts deploy --out /data/deployment.json"


def test_api_and_worker_commands(compose):
    assert compose["services"]["api"]["command"] == [
        "ledger", "serve", "--host", "0.0.0.0", "--port", "8000"
    ]
    assert compose["services"]["worker"]["command"] == ["ledger", "worker"]


def test_anvil_runs_project_binary(compose):
    anvil = compose["services"]["anvil"]
    command = anvil["command"]

    assert command[0].endswith(ANVIL_BINARY)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8545"
    assert "--prune-history" in command
    assert "build" in anvil


def test_anvil_binary_is_in_lockfile():
    lock = json.loads((ROOT / "package-lock.json").read_text())

    assert "node_modules/@foundry-rs/anvil-linux-amd64" in lock["packages"]
    assert "node_modules/@foundry-rs/cast-linux-amd64" in lock["packages"]


def test_postgres_image_healthcheck_and_volume(compose):
    postgres = compose["services"]["postgres"]

    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume_names = [volume.split(":")[0] for volume in postgres["volumes"]]
    assert volume_names == ["postgres-data"]
    assert "postgres-data" in compose["volumes"]


def test_app_services_share_deployment_volume(compose):
    for name in APP_SERVICES:
        assert "ledger-data:/data" in compose["services"][name]["volumes"], name
    assert "ledger-data" in compose["volumes"]


def test_app_environment_defaults(compose):
    for name in APP_SERVICES:
        environment = interpolate(compose["services"][name]["environment"], SAMPLE_ENVIRONMENT)
        assert environment["DATABASE_URL"] == EXPECTED_DATABASE_URL, name
        assert environment["RPC_URL"] == "http://anvil:8545", name
        assert environment["LEDGER_DEPLOYMENT_FILE"] == "/data/deployment.json", name


# --- Secrets -----------------------------------------------------------------------------------

REQUIRED_VARIABLE_RE = r"\$\{{{name}:\?[^}}]+\}}"


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        ("migrate", "LEDGER_ANCHORER_PRIVATE_KEY"),
        ("worker", "LEDGER_ANCHORER_PRIVATE_KEY"),
        ("api", "LEDGER_COLLECTOR_API_KEY"),
    ],
)
def test_secret_is_required_host_variable(compose, service, variable):
    value = compose["services"][service]["environment"][variable]

    assert re.fullmatch(REQUIRED_VARIABLE_RE.format(name=variable), value), value
    missing = {key: item for key, item in SAMPLE_ENVIRONMENT.items() if key != variable}
    with pytest.raises(MissingVariable, match=variable):
        interpolate(compose["services"][service]["environment"], missing)
    resolved = interpolate(compose["services"][service]["environment"], SAMPLE_ENVIRONMENT)
    assert resolved[variable] == SAMPLE_ENVIRONMENT[variable]


def test_api_does_not_get_anchorer_key(compose):
    assert "LEDGER_ANCHORER_PRIVATE_KEY" not in compose["services"]["api"]["environment"]


SECRET_NAME_RE = re.compile(r"KEY|SECRET|PASSWORD|TOKEN|MNEMONIC", re.IGNORECASE)


def test_secret_like_variables_are_interpolated(compose):
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form for environment"
        for variable, value in environment.items():
            if SECRET_NAME_RE.search(variable):
                assert str(value).startswith("${"), f"{name}: {variable} has a literal value"


@pytest.mark.parametrize(
    ("description", "pattern"),
    [
        ("hex private key", r"(?<![0-9A-Fa-f])(?:0x)?[0-9A-Fa-f]{64}(?![0-9A-Fa-f])"),
        ("API key", r"\blk_[0-9a-f]{16}_[0-9a-f]{8,}"),
        ("PEM private key", r"BEGIN [A-Z ]*PRIVATE KEY"),
        ("anvil dev mnemonic", r"test test test"),
    ],
)
def test_no_literal_secret_in_file(compose_text, description, pattern):
    assert re.search(pattern, compose_text) is None, f"docker-compose.yml contains a {description}"


def test_database_password_is_overridable(compose):
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]

    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:-[^}]*\}", password)
    resolved = interpolate(compose, {**SAMPLE_ENVIRONMENT, "POSTGRES_PASSWORD": "s3cret"})
    assert resolved["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    assert "ledger:s3cret@postgres" in resolved["services"]["api"]["environment"]["DATABASE_URL"]


# --- Dockerfile and .dockerignore ----------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, argument = line.partition(" ")
            instructions.append((keyword.upper(), argument.strip()))
    return instructions


def test_dockerfile_base_and_tools():
    instructions = dockerfile_instructions()
    runs = " ".join(argument for keyword, argument in instructions if keyword == "RUN")

    assert instructions[0][0] == "FROM"
    assert instructions[0][1].startswith("python:3.11-slim")
    assert re.search(r"apt-get install [^&]*\bnodejs\b", runs)
    assert re.search(r"apt-get install [^&]*\bnpm\b", runs)
    assert "npm ci" in runs
    assert "pip install" in runs


def test_dockerfile_copies_lockfile_before_npm_ci():
    instructions = dockerfile_instructions()
    copy_index = next(
        i for i, (keyword, argument) in enumerate(instructions)
        if keyword == "COPY" and "package-lock.json" in argument
    )
    npm_index = next(
        i for i, (keyword, argument) in enumerate(instructions)
        if keyword == "RUN" and "npm ci" in argument
    )

    assert copy_index < npm_index


def test_dockerfile_runs_as_non_root_user():
    users = [argument for keyword, argument in dockerfile_instructions() if keyword == "USER"]

    assert users, "the Dockerfile never switches to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")


@pytest.mark.parametrize("pattern", [".env", ".git/", ".venv/", "node_modules/", "tests/"])
def test_dockerignore_excludes(pattern):
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]

    assert pattern in patterns
