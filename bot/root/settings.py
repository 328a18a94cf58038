"""Process settings from the environment (and an optional .env file), validated once at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything firebreak reads from its environment. Tokens are SecretStr so they never print."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        use_attribute_docstrings=True,
        populate_by_name=True,
    )

    slack_bot_token: SecretStr = Field(validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token"))
    """Bot token (xoxb-...) from the Slack app's OAuth page."""

    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    """App-level token (xapp-...); when set, firebreak connects over Socket Mode instead of HTTP."""

    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validate_default=True,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret"),
    )
    """Signing secret from the app's Basic Information page; required in HTTP mode."""

    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL", "slack_api_url")
    )
    """Slack Web API base URL; point it at a stand-in for local runs and tests."""

    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    """Redis to keep state in (redis://, rediss:// or unix://). Unset: firebreak runs its own embedded Redis."""

    announce_channel: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FIREBREAK_ANNOUNCE_CHANNEL", "announce_channel"),
    )
    """Channel (ID like C0123 or #name) where new incidents and their updates are announced."""

    host: str = Field(default="0.0.0.0", validation_alias=AliasChoices("FIREBREAK_HOST", "host"))  # noqa: S104
    """Interface the HTTP server binds."""

    port: int = Field(default=3000, ge=0, le=65535, validation_alias=AliasChoices("FIREBREAK_PORT", "port"))
    """Port the HTTP server binds (Slack requests, /healthz, /readyz, /metrics)."""

    config_file: Path | None = Field(default=None, validation_alias=AliasChoices("FIREBREAK_CONFIG", "config_file"))
    """YAML file with severities, roles, channel prefix and command name (see deploy/firebreak.example.yaml)."""

    data_dir: Path = Field(default=Path(".firebreak"), validation_alias=AliasChoices("FIREBREAK_DATA_DIR", "data_dir"))
    """Where the embedded Redis keeps its data when REDIS_URL is unset."""

    job_lease_seconds: float = Field(
        default=15.0,
        ge=1,
        le=600,
        validation_alias=AliasChoices("FIREBREAK_JOB_LEASE", "job_lease_seconds"),
    )
    """Seconds a replica holds a job without renewing it; after a crash, another replica resumes it this late."""

    triage_channel: str | None = Field(
        default=None, validation_alias=AliasChoices("FIREBREAK_TRIAGE_CHANNEL", "triage_channel")
    )
    """Channel (an ID or #name) where alerts no route declares are offered with Declare incident / Ignore."""

    alerts_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FIREBREAK_ALERTS_TOKEN", "alerts_token")
    )
    """Bearer token Alertmanager sends to POST /alerts/alertmanager. Unset: that endpoint answers 404."""

    kubeconfig: Path | None = Field(
        default=None, validation_alias=AliasChoices("FIREBREAK_KUBECONFIG", "KUBECONFIG", "kubeconfig")
    )
    """Kubeconfig whose contexts are the clusters playbooks may act on (`cluster=<context>`). Unset: in a pod,
    the pod's service account; elsewhere ~/.kube/config."""

    kube_context: str | None = Field(
        default=None, validation_alias=AliasChoices("FIREBREAK_KUBE_CONTEXT", "kube_context")
    )
    """The cluster a playbook acts on when the request names none. Unset: the kubeconfig's current context."""

    post_spacing_seconds: float = Field(
        default=1.0, ge=0, le=10, validation_alias=AliasChoices("FIREBREAK_POST_SPACING", "post_spacing_seconds")
    )
    """Least time between two messages firebreak posts in one channel, across replicas (Slack allows about one
    a second per channel). 0 turns pacing off."""

    prometheus_url: str | None = Field(
        default=None, validation_alias=AliasChoices("FIREBREAK_PROMETHEUS_URL", "prometheus_url")
    )
    """Prometheus (or a compatible query API: Thanos, Mimir, VictoriaMetrics) the evidence panel asks, e.g.
    http://prometheus.monitoring:9090. Unset: `/incident evidence` says it is not configured."""

    log_level: str = Field(default="INFO", validation_alias=AliasChoices("FIREBREAK_LOG_LEVEL", "log_level"))
    """Python logging level."""

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, v: SecretStr) -> SecretStr:
        if not v.get_secret_value().startswith("xoxb-"):
            raise ValueError("SLACK_BOT_TOKEN must be a bot token starting with xoxb- (OAuth & Permissions page)")
        return v

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information page)")
        return v

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("SLACK_API_URL must be an http(s) URL such as https://slack.com/api/")
        return v if v.endswith("/") else v + "/"

    @field_validator("prometheus_url")
    @classmethod
    def _prometheus_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("FIREBREAK_PROMETHEUS_URL must be an http(s) URL such as http://prometheus:9090")
        return v

    @field_validator("slack_signing_secret", mode="after")
    @classmethod
    def _mode_needs_secret(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A field validator, not a model one, so a missing secret is reported together with every other
        # missing setting (a model validator runs only once all fields are valid).
        # A malformed app token is reported on its own; only a missing one makes the secret required.
        if v is None and "slack_app_token" in info.data and info.data["slack_app_token"] is None:
            raise ValueError(
                "HTTP mode needs SLACK_SIGNING_SECRET (Basic Information page); "
                "or set SLACK_APP_TOKEN to use Socket Mode"
            )
        return v

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None


def describe_settings() -> list[tuple[str, str, str]]:
    """(env var, default, doc) for every setting: the README's configuration table is checked against it."""
    rows = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        env = str(alias.choices[0])
        default = "required" if field.is_required() else repr(field.default)
        rows.append((env, default, field.description or ""))
    return rows
