#!/usr/bin/env python3
"""Checks the deployment files against each other and against the code, without a cluster.

  - lints helm/chorus strictly (values.schema.json included) with the default values, with
    deploy/values-production.yaml, and with every component and option switched on;
  - renders the chart in those three ways and validates every object against the Kubernetes
    schemas (strict: unknown fields fail), and the Prometheus Operator objects against the
    subset of their CRDs that the chart uses;
  - checks that every service of `chorus run` (libs/kit/src/config.rs, SERVICES) has its
    Deployment template and values block, and every network (libs/social/src/lib.rs,
    Network::ALL) its publishers.<network> and publishing.networks.<network> blocks;
  - checks that every CHORUS_* variable set by the chart and by deploy/compose.yaml is one the
    binary reads (libs/kit/src/config.rs, ENVIRONMENT), that secrets only come from Secrets,
    that every Deployment gets the same security secrets, and the pods' security contexts;
  - checks that the metrics the alerts and the dashboard use exist in the code, and that the
    chart's copy of the alerts is deploy/alerts.yml.

Run it through scripts/check-deploy.sh, which provides its Python packages.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate as kv
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "chorus"
COMPOSE = ROOT / "deploy" / "compose.yaml"
PRODUCTION_VALUES = ROOT / "deploy" / "values-production.yaml"
ALERTS = ROOT / "deploy" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "chorus.json"
KUBE_VERSION = "1.33.0"
RELEASE, NAMESPACE = "chorus", "chorus"

# Settings the binary reads (fields of Config) that `chorus run --help` may not list yet: they
# are accepted, and reported when ENVIRONMENT lacks them so that the list can be completed.
READ_BUT_MAYBE_UNLISTED = [
    "CHORUS_PUBLISHING__LINKEDIN__ENABLED",
    "CHORUS_PUBLISHING__LINKEDIN__REQUEST_TIMEOUT_MS",
    "CHORUS_NETSIM__REACTIONS_PER_TICK",
    "CHORUS_ENGAGEMENT__POLL_TICK_MS",
]

# Settings whose values are secrets: only ever from a Secret.
SECRET_NAME = re.compile(r"^CHORUS_(SECURITY__.*|[A-Z]+__DATABASE_URL|PUBLISHING__[A-Z]+__CLIENT_SECRET)$")
SECURITY_NAMES = ["CHORUS_SECURITY__DEV_SIGNING_KEY", "CHORUS_SECURITY__ENCRYPTION_KEYS", "CHORUS_SECURITY__VISITOR_SALT"]

# Every component block of values.yaml has these keys (publishers: all but autoscaling).
COMPONENT_KEYS = {
    "enabled", "replicaCount", "resources", "livenessProbe", "readinessProbe", "extraEnv",
    "nodeSelector", "tolerations", "affinity", "autoscaling", "podDisruptionBudget",
}


class Problems:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.notes: list[str] = []

    def error(self, message: str) -> None:
        if message in self.errors:
            return
        self.errors.append(message)
        print(f"  FAIL {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)
        print(f"  note {message}")


# --- What the code says -------------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def rust_block(text: str, start: str, what: str) -> str:
    """The text from `start` to the end of its array (`];`)."""
    index = text.find(start)
    if index < 0:
        raise SystemExit(f"check-deploy: cannot find {what} ({start!r}); update scripts/check-deploy.py")
    end = text.find("];", index)
    return text[index:end]


def rust_string_array(text: str, const: str) -> list[str]:
    body = rust_block(text, f"pub const {const}: &[&str] = &[", const)
    return re.findall(r'"([^"]+)"', body)


def code_facts() -> dict:
    config = read(ROOT / "libs" / "kit" / "src" / "config.rs")
    social = read(ROOT / "libs" / "social" / "src" / "lib.rs")

    services = rust_string_array(config, "SERVICES")
    with_database = rust_string_array(config, "SERVICES_WITH_DATABASE")
    environment_body = rust_block(config, "pub const ENVIRONMENT: &[(&str, &str)] = &[", "ENVIRONMENT")
    environment = re.findall(r'\(\s*"([^"]+)",', environment_body)

    gamification = re.search(r"pub struct GamificationConfig \{(.*?)\n\}", config, re.S)
    if not gamification:
        raise SystemExit("check-deploy: cannot find GamificationConfig in config.rs")
    actions = re.findall(r"pub points_([a-z_]+):", gamification.group(1))

    all_networks = rust_block(social, "pub const ALL: &'static [Network] = &[", "Network::ALL")
    variants = re.findall(r"Network::(\w+)", all_networks.split("=", 1)[1])
    # The wire names are those of `Network::as_str` (other matches, e.g. display names, differ).
    as_str_body = re.search(r"pub fn as_str\(self\) -> &'static str \{(.*?)\n    \}", social, re.S)
    if not as_str_body:
        raise SystemExit("check-deploy: cannot find Network::as_str in libs/social/src/lib.rs")
    as_str = dict(re.findall(r'Network::(\w+)\s*=>\s*"([^"]+)"', as_str_body.group(1)))
    missing = [variant for variant in variants if variant not in as_str]
    if missing:
        raise SystemExit(f"check-deploy: Network::{missing[0]} has no as_str name in libs/social/src/lib.rs")
    networks = [as_str[variant] for variant in variants]

    metrics = set()
    kinds = {}
    for path in list((ROOT / "libs").rglob("*.rs")) + list((ROOT / "services").rglob("*.rs")):
        for kind, name in re.findall(r'metrics::(counter_vec|gauge_vec|histogram_vec)\(\s*"(chorus_[a-z0-9_]+)"', read(path)):
            metrics.add(name)
            kinds[name] = kind
    return {
        "services": services,
        "with_database": with_database,
        "environment": environment,
        "actions": actions,
        "networks": networks,
        "metrics": metrics,
        "metric_kinds": kinds,
    }


def known_variables(facts: dict, problems: Problems) -> set[str]:
    """The CHORUS_* names the binary reads, with the patterns of ENVIRONMENT expanded."""
    names: set[str] = set()
    for name in facts["environment"]:
        if "<SERVICE>" in name:
            names.update(name.replace("<SERVICE>", service.upper()) for service in facts["with_database"])
        elif "<ACTION>" in name:
            names.update(name.replace("<ACTION>", action.upper()) for action in facts["actions"])
        elif "<" in name:
            problems.error(f"ENVIRONMENT entry {name} has a pattern this check does not know: teach known_variables()")
        else:
            names.add(name)
    for name in READ_BUT_MAYBE_UNLISTED:
        if name not in names:
            problems.note(f"{name} is read by the binary but missing from ENVIRONMENT (libs/kit/src/config.rs)")
        names.add(name)
    # LinkedIn's settings exist for every network.
    for name in list(names):
        if name.startswith("CHORUS_PUBLISHING__LINKEDIN__"):
            suffix = name.removeprefix("CHORUS_PUBLISHING__LINKEDIN__")
            names.update(f"CHORUS_PUBLISHING__{network.upper()}__{suffix}" for network in facts["networks"])
    return names


# --- Rendering -----------------------------------------------------------------------------------


def everything_on(defaults: dict, facts: dict) -> dict:
    """Values that switch on every component, every option and every template."""
    values = copy.deepcopy(defaults)
    for service in facts["services"]:
        block = values.get(service, {})
        block["enabled"] = True
        block.setdefault("autoscaling", {})["enabled"] = True
        block.setdefault("podDisruptionBudget", {})["enabled"] = True
    enabled_networks = [n for n, s in values["publishing"]["networks"].items() if s.get("enabled")]
    for network, publisher in values["publishers"].items():
        if network not in enabled_networks:
            continue
        publisher["enabled"] = True
        publisher["replicaCount"] = 2
        publisher["podDisruptionBudget"]["enabled"] = True
    values["serviceAccount"] = {"create": False, "name": "chorus-existing", "annotations": {}}
    values["nats"]["existingSecret"] = "chorus-nats"
    values["nats"]["perServiceUsers"] = True
    values["publishing"]["settings"]["oauthRedirectUrl"] = "https://chorus.example.com/v1/accounts/callback"
    values["config"]["otlpEndpoint"] = "http://otel-collector:4317"
    for network in values["publishing"]["networks"].values():
        network["clientId"] = "1234567890"
    values["ingress"]["enabled"] = True
    values["ingress"]["tls"] = [{"secretName": "chorus-tls", "hosts": ["chorus.example.com"]}]
    values["serviceMonitor"]["enabled"] = True
    values["prometheusRule"]["enabled"] = True
    values["networkPolicy"]["enabled"] = True
    values["networkPolicy"]["gatewayFrom"] = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}]
    values["imagePullSecrets"] = [{"name": "registry"}]
    return values


def lint(name: str, values: dict | None, problems: Problems) -> None:
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    for message in report.get("messages", []):
        if message["severity"] >= 2:
            problems.error(f"helm lint ({name}): {message['path']}: {message['error']}")
    for error in report.get("errors", []):
        problems.error(f"helm lint ({name}): {error}")


def render(values: dict | None) -> dict[str, list[dict]]:
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    documents: dict[str, list[dict]] = {}
    for path, text in manifests.items():
        if path.endswith(".txt"):
            documents[path] = [{"__text__": text}]
            continue
        documents[path] = [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def objects(rendered: dict[str, list[dict]]):
    for path, docs in sorted(rendered.items()):
        for doc in docs:
            if "__text__" not in doc:
                yield path, doc


# Subsets of the Prometheus Operator CRDs: the fields this chart writes, typed. A field the CRD
# has and the chart starts to use is added here.
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _LABELS, "annotations": _LABELS},
}
_DURATION = {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"}
_RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "targetLabel": {"type": "string"},
        "action": {"type": "string"},
        "regex": {"type": "string"},
        "replacement": {"type": "string"},
        "separator": {"type": "string"},
    },
}
RULE_GROUPS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name", "rules"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string"},
            "interval": _DURATION,
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["expr"],
                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                    "additionalProperties": False,
                    "properties": {
                        "alert": {"type": "string"},
                        "record": {"type": "string"},
                        "expr": {"type": "string", "minLength": 1},
                        "for": _DURATION,
                        "labels": _LABELS,
                        "annotations": _LABELS,
                    },
                },
            },
        },
    },
}
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"},
                    "namespaceSelector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
                    },
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": _LABELS, "matchExpressions": {"type": "array"}},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                                "relabelings": {"type": "array", "items": _RELABEL},
                                "metricRelabelings": {"type": "array", "items": _RELABEL},
                            },
                        },
                    },
                },
            },
        },
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _METADATA,
            "spec": {"type": "object", "required": ["groups"], "additionalProperties": False, "properties": {"groups": RULE_GROUPS}},
        },
    },
}


def validate_objects(name: str, rendered: dict[str, list[dict]], problems: Problems) -> int:
    count = 0
    for path, doc in objects(rendered):
        count += 1
        where = f"{name}: {path} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        crd = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        try:
            if crd is not None:
                jsonschema.validate(doc, crd)
            else:
                kv.validate(doc, KUBE_VERSION, strict=True)
        except kv.SchemaNotFoundError:
            problems.error(f"{where}: no Kubernetes {KUBE_VERSION} schema for {doc.get('apiVersion')} {doc.get('kind')}")
        except jsonschema.ValidationError as error:
            location = ".".join(str(part) for part in error.absolute_path) or "(root)"
            problems.error(f"{where}: {location}: {error.message.splitlines()[0]}")
    notes = [docs[0]["__text__"] for path, docs in rendered.items() if path.endswith("NOTES.txt")]
    if not notes or not notes[0].strip():
        problems.error(f"{name}: NOTES.txt renders empty")
    return count


# --- Checks on the rendered objects ----------------------------------------------------------------


def pod_specs(rendered: dict[str, list[dict]]):
    """(path, object, pod spec) of every workload."""
    for path, doc in objects(rendered):
        kind = doc.get("kind")
        if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            yield path, doc, doc["spec"]["template"]["spec"]
        elif kind == "Pod":
            yield path, doc, doc["spec"]


def container_variables(rendered: dict[str, list[dict]]):
    """(where, variable name, EnvVar or None for a ConfigMap key, container) of every Chorus container."""
    config_maps = {doc["metadata"]["name"]: doc for _, doc in objects(rendered) if doc.get("kind") == "ConfigMap"}
    for path, doc, spec in pod_specs(rendered):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            where = f"{path} {doc['kind']}/{doc['metadata']['name']} container {container['name']}"
            for env in container.get("env", []):
                yield where, env["name"], env, container
            for source in container.get("envFrom", []):
                reference = source.get("configMapRef")
                if reference and reference["name"] in config_maps:
                    # Named after the ConfigMap, so that one wrong key is reported once.
                    for key in config_maps[reference["name"]].get("data", {}):
                        yield f"ConfigMap/{reference['name']}", key, None, container


def check_variables(name: str, rendered, known: set[str], problems: Problems) -> set[str]:
    seen = set()
    for where, variable, env, _container in container_variables(rendered):
        if not variable.startswith("CHORUS_"):
            continue
        seen.add(variable)
        if variable not in known:
            problems.error(f"{name}: {where} sets {variable}, which the binary does not read")
        if SECRET_NAME.match(variable):
            if env is None:
                problems.error(f"{name}: {where}: {variable} comes from a ConfigMap; secrets come from Secrets")
            elif "secretKeyRef" not in env.get("valueFrom", {}):
                problems.error(f"{name}: {where}: {variable} is not a secretKeyRef")
    for path, doc, spec in pod_specs(rendered):
        for container in spec.get("containers", []):
            names = [env["name"] for env in container.get("env", [])]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                problems.error(f"{name}: {path}: container {container['name']} sets {', '.join(duplicates)} twice")
    return seen


def deployments(rendered) -> dict[str, dict]:
    """Deployments and StatefulSets (the per-network publishers) by name."""
    return {
        doc["metadata"]["name"]: doc
        for _, doc in objects(rendered)
        if doc.get("kind") in ("Deployment", "StatefulSet")
    }


def check_deployments(name: str, rendered, values: dict, facts: dict, problems: Problems) -> None:
    found = deployments(rendered)
    expected = {}
    for service in facts["services"]:
        if values.get(service, {}).get("enabled"):
            expected[f"{RELEASE}-{service}"] = (service, None)
    dedicated = set()
    for network, publisher in values.get("publishers", {}).items():
        if publisher.get("enabled"):
            expected[f"{RELEASE}-publisher-{network}"] = ("publishing", network)
            dedicated.add(network)
    enabled_networks = [n for n, s in values.get("publishing", {}).get("networks", {}).items() if s.get("enabled")]
    for deployment_name, (target, network) in expected.items():
        deployment = found.get(deployment_name)
        if deployment is None:
            problems.error(f"{name}: no Deployment or StatefulSet {deployment_name}")
            continue
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if container.get("args") != ["run", "--target", target]:
            problems.error(f"{name}: Deployment {deployment_name} runs {container.get('args')}, not run --target {target}")
        env = {e["name"]: e for e in container.get("env", [])}
        if target in facts["with_database"] and f"CHORUS_{target.upper()}__DATABASE_URL" not in env:
            problems.error(f"{name}: Deployment {deployment_name} has no CHORUS_{target.upper()}__DATABASE_URL")
        published = env.get("CHORUS_PUBLISHING__PUBLISH_NETWORKS", {}).get("value")
        if network:
            # One owner per account: a StatefulSet whose pod ordinal is the replica index.
            replicas = values["publishers"][network]["replicaCount"]
            if deployment.get("kind") != "StatefulSet":
                problems.error(f"{name}: {deployment_name} must be a StatefulSet (its pods' ordinals split the accounts)")
            if published != network:
                problems.error(f"{name}: {deployment_name} must publish {network} alone, not {published!r}")
            if env.get("CHORUS_PUBLISHING__REPLICAS", {}).get("value") != str(replicas):
                problems.error(f"{name}: {deployment_name} must set CHORUS_PUBLISHING__REPLICAS={replicas}")
            index = env.get("CHORUS_PUBLISHING__REPLICA_INDEX", {}).get("valueFrom", {}).get("fieldRef", {})
            if index.get("fieldPath") != "metadata.labels['apps.kubernetes.io/pod-index']":
                problems.error(f"{name}: {deployment_name} must take CHORUS_PUBLISHING__REPLICA_INDEX from the pod-index label")
            if deployment["spec"].get("replicas") != replicas:
                problems.error(f"{name}: {deployment_name} runs {deployment['spec'].get('replicas')} replicas, not {replicas}")
        elif target == "publishing":
            # The Deployment publishes the networks without a publisher of their own, and only those.
            rest = sorted(n for n in enabled_networks if n not in dedicated)
            wanted = ",".join(rest) if rest else "none"
            if ",".join(sorted((published or "").split(","))) != wanted:
                problems.error(f"{name}: {deployment_name} must set CHORUS_PUBLISHING__PUBLISH_NETWORKS={wanted}, not {published!r}")
    for deployment_name in found:
        if deployment_name not in expected:
            problems.error(f"{name}: unexpected Deployment {deployment_name}")

    # Every Deployment shares the same security secrets (the gateway signs what publishing reads).
    references = {}
    for deployment_name, deployment in found.items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            for variable in SECURITY_NAMES:
                reference = env.get(variable, {}).get("valueFrom", {}).get("secretKeyRef")
                if reference is None:
                    problems.error(f"{name}: Deployment {deployment_name} lacks {variable} from a Secret")
                    continue
                references.setdefault(variable, set()).add((reference["name"], reference["key"]))
    for variable, sources in references.items():
        if len(sources) > 1:
            problems.error(f"{name}: {variable} comes from different Secrets/keys: {sorted(sources)}")

    for path, doc, spec in pod_specs(rendered):
        pod_context = spec.get("securityContext", {})
        for container in spec.get("containers", []):
            context = {**pod_context, **container.get("securityContext", {})}
            where = f"{name}: {path} container {container['name']}"
            if context.get("runAsNonRoot") is not True or context.get("runAsUser") != 10001:
                problems.error(f"{where}: must run as non-root uid 10001")
            if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
                problems.error(f"{where}: root filesystem must be read-only")
            if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
                problems.error(f"{where}: allowPrivilegeEscalation must be false")
            if "ALL" not in container.get("securityContext", {}).get("capabilities", {}).get("drop", []):
                problems.error(f"{where}: capabilities must drop ALL")


# --- Checks on the files -------------------------------------------------------------------------


def check_chart_files(defaults: dict, schema: dict, facts: dict, problems: Problems) -> None:
    templates = CHART / "templates"
    for service in facts["services"]:
        template = templates / f"{service}-deployment.yaml"
        if not template.exists():
            problems.error(f"helm/chorus/templates/{service}-deployment.yaml is missing")
        elif "chorus.deployment" not in read(template):
            problems.error(f"{template.relative_to(ROOT)} does not use the shared chorus.deployment template")
        block = defaults.get(service)
        if not isinstance(block, dict):
            problems.error(f"values.yaml has no `{service}` block")
            continue
        missing = COMPONENT_KEYS - set(block)
        if missing:
            problems.error(f"values.yaml `{service}` lacks {', '.join(sorted(missing))}")
        if service not in schema["properties"]:
            problems.error(f"values.schema.json does not describe `{service}`")
    schema_networks = schema["properties"]["publishers"]["properties"]
    schema_settings = schema["properties"]["publishing"]["properties"]["networks"]["properties"]
    for network in facts["networks"]:
        publisher = defaults.get("publishers", {}).get(network)
        if not isinstance(publisher, dict):
            problems.error(f"values.yaml has no `publishers.{network}` block")
        elif COMPONENT_KEYS - {"autoscaling"} - set(publisher):
            problems.error(f"values.yaml `publishers.{network}` lacks {', '.join(sorted(COMPONENT_KEYS - {'autoscaling'} - set(publisher)))}")
        if network not in defaults.get("publishing", {}).get("networks", {}):
            problems.error(f"values.yaml has no `publishing.networks.{network}` block")
        if network not in schema_networks or network not in schema_settings:
            problems.error(f"values.schema.json does not describe publishers.{network} and publishing.networks.{network}")
    for label, names in (("publishers", defaults.get("publishers", {})), ("publishing.networks", defaults["publishing"].get("networks", {}))):
        for network in names:
            if network not in facts["networks"]:
                problems.error(f"values.yaml `{label}.{network}` is not a network of libs/social (Network::ALL)")
    database_keys = set(defaults["secrets"]["keys"]["databaseUrls"])
    if database_keys != set(facts["with_database"]):
        problems.error(f"secrets.keys.databaseUrls names {sorted(database_keys)}, the services with a database are {sorted(facts['with_database'])}")


def check_compose(facts: dict, known: set[str], problems: Problems) -> int:
    compose = yaml.safe_load(read(COMPOSE))
    services = compose.get("services", {})
    variables = 0
    security = {}
    for name, service in services.items():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
        for variable, value in environment.items():
            if not variable.startswith("CHORUS_"):
                continue
            variables += 1
            if variable not in known:
                problems.error(f"deploy/compose.yaml: service {name} sets {variable}, which the binary does not read")
            if variable in SECURITY_NAMES:
                security.setdefault(variable, set()).add(value)
        if service.get("image", "").startswith("chorus"):
            missing = [v for v in SECURITY_NAMES if v not in environment]
            if missing:
                problems.error(f"deploy/compose.yaml: service {name} lacks {', '.join(missing)}")
    for variable, values in security.items():
        if len(values) > 1:
            problems.error(f"deploy/compose.yaml: {variable} differs between services")
    for service in facts["services"]:
        entry = services.get(service)
        if entry is None:
            problems.error(f"deploy/compose.yaml has no `{service}` service")
            continue
        if entry.get("command") != ["run", "--target", service]:
            problems.error(f"deploy/compose.yaml: {service} must run [run, --target, {service}]")
        if service in facts["with_database"] and f"CHORUS_{service.upper()}__DATABASE_URL" not in entry.get("environment", {}):
            problems.error(f"deploy/compose.yaml: {service} has no CHORUS_{service.upper()}__DATABASE_URL")
    collector = yaml.safe_load(read(ROOT / "deploy" / "otel-collector.yaml"))
    scraped = {
        target.split(":")[0]
        for job in collector["receivers"]["prometheus"]["config"]["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for service in facts["services"]:
        if service not in scraped:
            problems.error(f"deploy/otel-collector.yaml does not scrape {service}")
    return variables


def check_observability(facts: dict, problems: Problems) -> int:
    if read(ALERTS) != read(CHART / "files" / "alerts.yml"):
        problems.error("helm/chorus/files/alerts.yml differs from deploy/alerts.yml: copy deploy/alerts.yml over it")
    alerts = yaml.safe_load(read(ALERTS))
    try:
        jsonschema.validate(alerts.get("groups"), RULE_GROUPS)
    except jsonschema.ValidationError as error:
        problems.error(f"deploy/alerts.yml: {error.message.splitlines()[0]}")
    expressions = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    dashboard = json.loads(read(DASHBOARD))

    def panel_targets(panels):
        for panel in panels:
            yield from (target.get("expr", "") for target in panel.get("targets", []))
            yield from panel_targets(panel.get("panels", []))

    expressions += list(panel_targets(dashboard.get("panels", [])))
    available = set()
    for metric in facts["metrics"]:
        available.add(metric)
        if facts["metric_kinds"][metric] == "histogram_vec":
            available.update(f"{metric}_{suffix}" for suffix in ("bucket", "sum", "count"))
    used = set()
    for expression in expressions:
        used.update(re.findall(r"\b(chorus_[a-z0-9_]+)", expression))
    for metric in sorted(used - available):
        problems.error(f"deploy/alerts.yml or the dashboard uses {metric}, which no code registers")
    return len(used)


# --- Main ------------------------------------------------------------------------------------------


def main() -> int:
    problems = Problems()
    print("check-deploy: reading the code")
    facts = code_facts()
    known = known_variables(facts, problems)
    print(f"  services: {', '.join(facts['services'])}")
    print(f"  networks: {', '.join(facts['networks'])}")

    defaults = yaml.safe_load(read(CHART / "values.yaml"))
    schema = json.loads(read(CHART / "values.schema.json"))
    production = helm.values_from_yaml(read(PRODUCTION_VALUES))
    scenarios = [
        ("default values", None),
        ("deploy/values-production.yaml", production),
        ("everything on", everything_on(defaults, facts)),
    ]

    print("check-deploy: chart files")
    check_chart_files(defaults, schema, facts, problems)

    total_objects = 0
    variables_seen: set[str] = set()
    for name, values in scenarios:
        print(f"check-deploy: {name}")
        lint(name, values, problems)
        try:
            rendered = render(values)
        except helm.HelmError as error:
            problems.error(f"{name}: render failed: {error}")
            continue
        count = validate_objects(name, rendered, problems)
        total_objects += count
        # The values the chart saw: defaults merged with the file (for the expectations).
        effective = merge(copy.deepcopy(defaults), values or {})
        variables_seen |= check_variables(name, rendered, known, problems)
        check_deployments(name, rendered, effective, facts, problems)
        print(f"  {count} objects valid for Kubernetes {KUBE_VERSION}")

    print("check-deploy: deploy/compose.yaml and deploy/otel-collector.yaml")
    compose_variables = check_compose(facts, known, problems)
    print("check-deploy: alerts and dashboard")
    metrics_used = check_observability(facts, problems)
    print("check-deploy: NATS durability")
    check_nats_durability(problems)

    if problems.errors:
        print(f"check-deploy: FAILED, {len(problems.errors)} problem(s) above")
        return 1
    print(
        f"check-deploy: OK: chart linted and rendered 3 ways ({total_objects} objects valid for Kubernetes {KUBE_VERSION}), "
        f"{len(facts['services'])} services, {len(facts['networks'])} network(s), {len(variables_seen)} CHORUS_* variables "
        f"from the chart and {compose_variables} from compose read by the binary, {metrics_used} metric names in alerts and dashboard registered by the code"
        + (f", {len(problems.notes)} note(s)" if problems.notes else "")
    )
    return 0


def check_nats_durability(problems: Problems) -> None:
    """Every NATS configuration shipped syncs each acknowledged write (sync_interval: always),
    compose starts its server with one of them, and the production values keep 3 copies."""
    configs = sorted((ROOT / "deploy" / "nats").glob("*.conf"))
    for config in configs:
        text = read(config)
        if not re.search(r"^\s*sync_interval:\s*always\s*$", text, re.MULTILINE):
            problems.error(f"{config.relative_to(ROOT)}: JetStream without `sync_interval: always`")
    compose = yaml.safe_load(read(COMPOSE))
    nats = compose.get("services", {}).get("nats", {})
    command = nats.get("command", [])
    mounted = [volume.split(":")[0] for volume in nats.get("volumes", []) if isinstance(volume, str)]
    if "-c" not in command or not any(path.endswith(".conf") and (COMPOSE.parent / path).exists() for path in mounted):
        problems.error("deploy/compose.yaml: nats must start with a configuration file of deploy/nats (sync_interval: always)")
    if "sync_interval: always" not in read(CHART / "values.yaml"):
        problems.error("helm/chorus/values.yaml: the recommended nats chart values must set sync_interval: always")
    production = yaml.safe_load(read(PRODUCTION_VALUES))
    if production.get("nats", {}).get("streamReplicas", 1) < 3:
        problems.error("deploy/values-production.yaml: nats.streamReplicas must be 3 (one server lost loses nothing)")
    print(f"  {len(configs)} NATS configuration(s), compose and the production values checked")


def merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


if __name__ == "__main__":
    sys.exit(main())
