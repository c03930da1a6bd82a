"""Deployment files for a server: a systemd unit for `optui collect` and a docker-compose stack.

Secrets never go into these files: the unit reads them from an EnvironmentFile (mode 0600) that the
operator fills in, and an existing one is never overwritten.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass, field
from pathlib import Path

from optui.config import Settings, config_path, write_private

UNIT_NAME = "optui-collect.service"
ENV_NAME = "optui.env"
COMPOSE_NAME = "docker-compose.yml"
NEXT_STEPS_NAME = "NEXT_STEPS.txt"


@dataclass
class Deployment:
    """What was written where, and what the operator does next."""

    directory: Path
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


def optui_executable() -> Path:
    """The `optui` console script next to the running interpreter."""
    return Path(sys.executable).absolute().parent / "optui"


CONFIG_EXIT = 2
"""`optui collect`'s exit status for a configuration or login problem: restarting cannot fix it."""


def systemd_unit(settings: Settings, env_file: Path, workdir: Path, config: Path, user: str) -> str:
    """A unit that restarts the headless collector on a crash and stops it with SIGTERM.

    The Kite access token is never in the unit's environment: the collector reads it from the
    secrets file, which a morning re-login rewrites, and resumes on its own (an environment token
    would override the new one). A configuration or login exit (status 2) is not restarted."""
    return f"""[Unit]
Description=optui headless option-chain collector
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
WorkingDirectory={workdir}
# Secrets (OPTUI_KITE_API_SECRET, OPTUI_INFLUXDB_TOKEN) live here, mode 0600.
EnvironmentFile={env_file}
# The access token is read from the secrets file (a re-login rewrites it; the collector picks
# it up without a restart): an environment token would hide the new one.
UnsetEnvironment=OPTUI_KITE_ACCESS_TOKEN
Environment=OPTUI_CONFIG_FILE={config}
Environment=PYTHONUNBUFFERED=1
ExecStart={optui_executable()} collect
Restart=on-failure
RestartSec=10
# Exit {CONFIG_EXIT} is a configuration or login problem: restarting every 10 s cannot fix it.
RestartPreventExitStatus={CONFIG_EXIT}
StartLimitIntervalSec=600
StartLimitBurst=10
# SIGTERM lets the collector flush its spool before exiting.
KillSignal=SIGTERM
TimeoutStopSec=30
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
"""


def env_template() -> str:
    """The EnvironmentFile skeleton: names only, the operator fills in the values."""
    return """# optui secrets for systemd and docker compose. Keep this file mode 0600.
# The Kite access token does not belong here: log in (optui, Production 2) and it is stored in
# the secrets file, where the running collector picks it up.
OPTUI_KITE_API_SECRET=
OPTUI_INFLUXDB_TOKEN=
INFLUXDB_ADMIN_PASSWORD=
GRAFANA_ADMIN_PASSWORD=
"""


def docker_compose(settings: Settings) -> str:
    """InfluxDB 2 (bucket with infinite retention), Redis and Grafana, bound to loopback."""
    org = settings.influxdb.org
    bucket = settings.influxdb.bucket
    return f"""# optui services: docker compose --env-file {ENV_NAME} up -d
services:
  influxdb:
    image: influxdb:2.7
    restart: unless-stopped
    ports:
      - "127.0.0.1:8086:8086"
    environment:
      DOCKER_INFLUXDB_INIT_MODE: setup
      DOCKER_INFLUXDB_INIT_USERNAME: optui
      DOCKER_INFLUXDB_INIT_PASSWORD: ${{INFLUXDB_ADMIN_PASSWORD:?set INFLUXDB_ADMIN_PASSWORD in {ENV_NAME}}}
      DOCKER_INFLUXDB_INIT_ORG: {org}
      DOCKER_INFLUXDB_INIT_BUCKET: {bucket}
      # No DOCKER_INFLUXDB_INIT_RETENTION: the bucket keeps data forever (infinite retention).
      DOCKER_INFLUXDB_INIT_ADMIN_TOKEN: ${{OPTUI_INFLUXDB_TOKEN:?set OPTUI_INFLUXDB_TOKEN in {ENV_NAME}}}
    volumes:
      - influxdb-data:/var/lib/influxdb2
      - influxdb-config:/etc/influxdb2
  redis:
    image: redis:7
    restart: unless-stopped
    # AOF on, fsync every second: a restart loses at most a second of cached snapshots.
    command: ["redis-server", "--appendonly", "yes", "--appendfsync", "everysec"]
    ports:
      - "127.0.0.1:6379:6379"
    volumes:
      - redis-data:/data
  grafana:
    image: grafana/grafana:11.2.0
    restart: unless-stopped
    depends_on:
      - influxdb
    ports:
      - "127.0.0.1:3000:3000"
    environment:
      GF_SECURITY_ADMIN_PASSWORD: ${{GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD in {ENV_NAME}}}
      OPTUI_INFLUXDB_TOKEN: ${{OPTUI_INFLUXDB_TOKEN:?set OPTUI_INFLUXDB_TOKEN in {ENV_NAME}}}
    volumes:
      - grafana-data:/var/lib/grafana
      # Datasource and dashboards (index overview, ATM IV and straddle, premium flow,
      # participants, alerts, collector health), written by optui.ops.grafana.
      - ./grafana/provisioning:/etc/grafana/provisioning:ro
      - ./grafana/dashboards:/var/lib/grafana/dashboards:ro
volumes:
  influxdb-data:
  influxdb-config:
  redis-data:
  grafana-data:
"""


def write_deployment(directory: Path, settings: Settings, user: str | None = None) -> Deployment:
    """Write the unit, compose file, secrets skeleton and next steps into `directory`."""
    directory = directory.expanduser().absolute()
    directory.mkdir(parents=True, exist_ok=True)
    out = Deployment(directory)
    env_file = directory / ENV_NAME
    config = (settings.path or config_path()).expanduser().absolute()
    workdir = Path.cwd().absolute()
    user = user or getpass.getuser()
    unit = directory / UNIT_NAME
    unit.write_text(systemd_unit(settings, env_file, workdir, config, user), encoding="utf-8")
    out.written.append(unit)
    compose = directory / COMPOSE_NAME
    compose.write_text(docker_compose(settings), encoding="utf-8")
    out.written.append(compose)
    from optui.ops.grafana import write_grafana

    out.written.extend(write_grafana(directory / "grafana", settings.influxdb.org, settings.influxdb.bucket))
    if env_file.exists():
        out.kept.append(env_file)  # may already hold secrets
    else:
        write_private(env_file, env_template())
        out.written.append(env_file)
    http = "http://127.0.0.1:8086"
    out.next_steps = [
        f"Fill in the secrets in {env_file} (it is mode 0600; never commit it).",
        f"Start the services: cd {directory} && docker compose --env-file {ENV_NAME} up -d",
        f'Point optui at InfluxDB: in {config} set [store] url = "influxdb://127.0.0.1:8086" '
        f"(server {http}, org {settings.influxdb.org}, bucket {settings.influxdb.bucket}).",
        'Optional cache: set [cache] url = "redis://127.0.0.1:6379/0" there too.',
        f"Install the collector: sudo cp {unit} /etc/systemd/system/ && sudo systemctl daemon-reload "
        f"&& sudo systemctl enable --now {UNIT_NAME}",
        f"Watch it: journalctl -u {UNIT_NAME} -f ; Grafana at http://127.0.0.1:3000 (user admin).",
        "Log in to Kite every morning (tokens expire around 06:00 IST): optui, Production 2. "
        "The running collector pauses when the token expires and resumes on its own once the "
        "new one is stored: no restart. Check it any time with: optui doctor",
    ]
    steps = directory / NEXT_STEPS_NAME
    steps.write_text("\n".join(f"{i}. {s}" for i, s in enumerate(out.next_steps, 1)) + "\n", encoding="utf-8")
    out.written.append(steps)
    return out
